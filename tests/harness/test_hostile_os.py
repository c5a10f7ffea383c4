"""Operating-system errors are user errors: a read-only run directory, a name too long for the
file system, an unwritable model cache, a config or question file that never ends. Each is one
line on stderr naming the path and the cause, exit code 2, and nothing lost."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text
from tests.harness.test_hostile_run_dir import fingerprint, one_error_line

GOOD = sim_config_text(items=2)


def _cli(*args: str, memory_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command in a subprocess, bounded in time (and memory, when asked)."""

    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run(
        [sys.executable, "-m", "mindshift.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # The status line a run prints before it loads a local model is no part of the error.
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("loading model '")
    ]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_config_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    try:
        result = _cli("run", str(fifo), "--out", str(tmp_path / "run"))
    except subprocess.TimeoutExpired:
        pytest.fail("mindshift blocked reading a FIFO as its config")
    line = _one_line(result)
    assert str(fifo) in line and "not a regular file" in line


def test_a_config_that_never_ends_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    result = _cli("run", "/dev/zero", "--out", str(tmp_path / "run"), memory_limit=3 << 30)
    line = _one_line(result)
    assert "/dev/zero" in line and "not a regular file" in line


def test_an_oversized_config_is_not_read_into_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(64 << 20)  # sparse: 64 MiB of zeros
    result = _cli("run", str(big), "--out", str(tmp_path / "run"), memory_limit=3 << 30)
    assert "larger than" in _one_line(result)


def test_a_question_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "questions.jsonl"
    os.mkfifo(fifo)
    config = tmp_path / "c.toml"
    config.write_text(
        GOOD.replace("items = 2", f'items = 2\ndomain = "file:{fifo}"'), encoding="utf-8"
    )
    try:
        result = _cli("run", str(config), "--out", str(tmp_path / "run"))
    except subprocess.TimeoutExpired:
        pytest.fail("mindshift blocked reading a FIFO as its question file")
    assert "not a regular file" in _one_line(result)
    assert not (tmp_path / "run").exists()


def test_a_run_directory_name_too_long_for_the_file_system(
    tmp_path: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ("n" * 300)
    capsys.readouterr()
    assert main(["run", str(write_config(GOOD, "c.toml")), "--out", str(out)]) == 2
    assert "File name too long" in one_error_line(capsys)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` read-only for this process: a read-only bind mount as root (whom
    permissions do not stop), the permission bits otherwise."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [directory, *directory.rglob("*")]}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no mount command to make a read-only bind mount as root")
    bind = subprocess.run([mount, "--bind", str(directory), str(directory)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount as root here: {bind.stderr.decode().strip()}")
    try:
        subprocess.run(
            [mount, "-o", "remount,ro,bind", str(directory)], check=True, capture_output=True
        )
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_a_read_only_run_directory_is_one_line_and_left_as_it_was(
    tmp_path: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(GOOD, "c.toml")
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    before = fingerprint(run_dir)
    capsys.readouterr()
    with read_only(run_dir):
        assert main(["run", str(config), "--out", str(run_dir)]) == 2
        line = one_error_line(capsys)
        assert str(run_dir) in line
        assert "Read-only file system" in line or "Permission denied" in line
    assert fingerprint(run_dir) == before
    assert main(["run", str(config), "--out", str(run_dir)]) == 0  # and it resumes


def test_an_unwritable_model_cache_is_one_line_naming_it(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    config = tmp_path / "local.toml"
    config.write_text(
        '[experiment]\nname = "local"\nparadigm = "change-of-mind"\n\n[paradigm]\nitems = 1\n\n'
        '[[models]]\nid = "smol"\nspec = "local:smollm2"\n',
        encoding="utf-8",
    )
    environment = {**os.environ, "MINDSHIFT_CACHE": str(blocker / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "mindshift.cli", "run", str(config), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    line = _one_line(result)
    assert str(blocker) in line and "Not a directory" in line
    assert not (tmp_path / "run").exists()
