"""The analysis directory is replaced as a whole (issue 10, item 4), and two analyses of one
run are serialised (item 10): a failure, a kill or a second writer leaves the old analysis or
the new one, complete — never a mix, never a `.partial` file."""

from __future__ import annotations

import builtins
import errno
import fcntl
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mindshift.analysis import AnalysisInputError, analyse_run
from mindshift.analysis.render import outputs as outputs_module
from mindshift.cli import main
from tests.conftest import sim_config_text

Snapshot = dict[str, bytes]
OTHER_CLIP = 0.001
"""A Bayes clip other than the default: the same run analysed to different numbers."""


def snapshot(directory: Path) -> Snapshot:
    """Every file under `directory` (relative path -> bytes)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def leftovers(run_dir: Path) -> list[str]:
    """Anything a half-done write could leave: partial files, temporary directories."""
    return sorted(
        str(path.relative_to(run_dir))
        for path in run_dir.rglob("*")
        if path.name.endswith(".partial") or ".tmp-" in path.name or ".old-" in path.name
    )


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("atomic")
    config = root / "run.toml"
    config.write_text(sim_config_text(name="atomic", items=4), encoding="utf-8")
    run_dir = root / "template"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run_dir(made_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the run, analysed once (the "old" analysis)."""
    target = tmp_path / "run"
    target.mkdir()
    for path in made_run.iterdir():
        if path.is_file() and not path.name.startswith("."):
            (target / path.name).write_bytes(path.read_bytes())
    analyse_run(target)
    return target


def _failing_open(
    monkeypatch: pytest.MonkeyPatch, under: Path, fails: Callable[[Path, int], bool]
) -> None:
    """Make opening a file for writing under `under` raise where `fails(path, n)` says so
    (`n` counts the write-opens so far), whatever the writer uses (open, Path.open)."""
    real_open = builtins.open
    count = [0]

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and any(m in mode for m in "wxa"):
            path = Path(os.fsdecode(file))
            if path.is_relative_to(under):
                count[0] += 1
                if fails(path, count[0]):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)


def test_disk_full_mid_write_keeps_the_old_analysis(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_dir / "analysis"
    old = snapshot(out)
    entries = {p.name for p in run_dir.iterdir()}
    _failing_open(monkeypatch, run_dir, lambda _path, n: n >= 3)
    with pytest.raises(AnalysisInputError, match="No space left"):
        analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    assert snapshot(out) == old
    assert leftovers(run_dir) == []
    assert {p.name for p in run_dir.iterdir()} == entries
    # Without the fault the same call does write a different analysis: the test could fail.
    monkeypatch.undo()
    analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    assert snapshot(out) != old and set(snapshot(out)) == set(old)


def test_one_unwritable_output_keeps_the_old_analysis(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_dir / "analysis"
    old = snapshot(out)
    _failing_open(monkeypatch, run_dir, lambda path, _n: path.name.startswith("report.html"))
    with pytest.raises(AnalysisInputError, match="cannot write the analysis"):
        analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    assert snapshot(out) == old
    assert leftovers(run_dir) == []


def test_a_kill_between_the_renames_is_undone_by_the_next_write(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the directories cannot be exchanged, the old analysis is renamed aside first; a
    kill right then leaves no `analysis/`. The next write puts the old one back, even when
    it fails itself."""
    out = run_dir / "analysis"
    old = snapshot(out)
    out.rename(run_dir / ".analysis.old-killed")
    (run_dir / ".analysis.tmp-killed").mkdir()
    (run_dir / ".analysis.tmp-killed" / "summary.json").write_text("{")
    _failing_open(monkeypatch, run_dir, lambda _path, n: n >= 2)
    with pytest.raises(AnalysisInputError):
        analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    assert snapshot(out) == old
    assert leftovers(run_dir) == []


def test_leftover_temporaries_are_removed(run_dir: Path) -> None:
    dead = run_dir / ".analysis.tmp-dead"
    (dead / "tables").mkdir(parents=True)
    (dead / "summary.json").write_text("{")
    (dead / "tables" / "fit.csv").write_text("model\n")
    analyse_run(run_dir)
    assert leftovers(run_dir) == []
    assert (run_dir / "analysis" / "report.html").is_file()


def test_the_fallback_swap_leaves_a_complete_new_analysis(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_dir / "analysis"
    old = snapshot(out)
    monkeypatch.setattr(outputs_module, "_exchange", lambda _a, _b: False)
    analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    new = snapshot(out)
    assert new != old and set(new) == set(old)
    assert leftovers(run_dir) == []


def test_compare_refuses_an_out_directory_with_foreign_files(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    capsys.readouterr()
    assert main(["compare", str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notes.txt" in err
    assert snapshot(out) == {"notes.txt": b"my notes"}
    # An earlier comparison in the same place is replaced as usual.
    again = tmp_path / "cmp"
    assert main(["compare", str(run_dir), "--out", str(again)]) == 0
    assert main(["compare", str(run_dir), "--out", str(again)]) == 0
    assert (again / "runs.csv").is_file() and leftovers(tmp_path) == []


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mindshift.cli", *args]


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": str(root), "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture
def both_analyses(run_dir: Path) -> tuple[Snapshot, Snapshot]:
    """The complete analysis with the default clip (as `run_dir` has it) and with the
    other clip: the only states a kill may leave."""
    first = snapshot(run_dir / "analysis")
    analyse_run(run_dir, bayes_clip=OTHER_CLIP)
    second = snapshot(run_dir / "analysis")
    analyse_run(run_dir)
    assert snapshot(run_dir / "analysis") == first
    return first, second


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_old_or_new(
    run_dir: Path, both_analyses: tuple[Snapshot, Snapshot]
) -> None:
    first, second = both_analyses
    started = time.perf_counter()
    subprocess.run(_cli("analyse", str(run_dir)), env=_env(), check=True, capture_output=True)
    duration = time.perf_counter() - started
    rng = random.Random(10)
    clips = ["0.01", str(OTHER_CLIP)]
    for attempt in range(5):
        args = ("analyse", str(run_dir), "--bayes-clip", clips[attempt % 2])
        process = subprocess.Popen(
            _cli(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Most of a run is start-up and computing; aim at its end, where the writing is.
        time.sleep(rng.uniform(0.5, 1.05) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = snapshot(run_dir / "analysis")
        assert state in (first, second), f"attempt {attempt}: a mixed analysis"
    subprocess.run(_cli("analyse", str(run_dir)), env=_env(), check=True, capture_output=True)
    assert snapshot(run_dir / "analysis") == first
    assert leftovers(run_dir) == []


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    return process.stderr.readline()


def test_two_analyses_at_once_are_serialised(
    run_dir: Path, both_analyses: tuple[Snapshot, Snapshot]
) -> None:
    """Two `analyse` of one run while a third writer holds the lock: both wait (one line
    each, saying so), then run one after the other; the run ends with one complete analysis."""
    first, second = both_analyses
    lock = os.open(run_dir / ".analysis.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    processes = [
        subprocess.Popen(
            _cli("analyse", str(run_dir), "--bayes-clip", clip),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clip in ("0.01", str(OTHER_CLIP))
    ]
    try:
        # Each says, once, that it waits (an unserialised analysis would instead finish,
        # and its stderr end without that line).
        for process in processes:
            line = _first_line(process)
            assert "another analysis is writing" in line and "waiting for it to finish" in line
        assert all(process.poll() is None for process in processes)
        assert snapshot(run_dir / "analysis") == first
    finally:
        os.close(lock)
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    assert errors == ["", ""]
    assert snapshot(run_dir / "analysis") in (first, second)
    assert leftovers(run_dir) == []
