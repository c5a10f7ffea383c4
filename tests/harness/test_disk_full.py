"""A full disk, at the start of a run or in the middle of it: one line naming calls.jsonl and
the cause, exit code 2, no torn line left in the log, and a resume (once there is space
again) ends with every (trial_id, stage) stored exactly once.

The disk fills up through `os.write`, the call the run store writes every record with: after
a given number of writes one write stores only part of its data (as a real full disk does),
and every write after it fails with ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text

ITEMS = 6
CONDITIONS = 36


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    real_write = os.write
    done = 0

    def write(fd: int, data: bytes) -> int:
        nonlocal done
        done += 1
        if done <= writes:
            return real_write(fd, data)
        if done == writes + 1 and len(data) > 1:
            return real_write(fd, bytes(data)[: len(data) // 2])  # the last space taken
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def keys(run_dir: Path) -> Counter[tuple[str, int]]:
    # Every line parses: no torn record was left in the middle of the log.
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter((r["trial_id"], r["stage"]) for r in map(json.loads, lines))


@pytest.mark.parametrize("writes_before_full", [0, 1, 4, 11, 23])
def test_a_full_disk_is_one_line_and_the_run_resumes_with_every_call_once(
    writes_before_full: int,
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(sim_config_text(items=ITEMS, batch_size=4), "c.toml")
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        fill_disk_after(patch, writes_before_full)
        capsys.readouterr()
        assert main(["run", str(config), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(run_dir / "calls.jsonl") in err[0] and "No space left on device" in err[0]
    stored = keys(run_dir) if (run_dir / "calls.jsonl").exists() else Counter()
    assert set(stored.values()) <= {1}
    assert sum(stored.values()) < ITEMS * (1 + CONDITIONS)

    # Space again: the same command resumes and completes the run.
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    stored = keys(run_dir)
    assert len(stored) == ITEMS * (1 + CONDITIONS)
    assert set(stored.values()) == {1}, "a call was stored twice"


def test_a_full_disk_while_failures_are_retired_loses_nothing(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """failures.jsonl is appended before calls.jsonl is rewritten: a full disk at that
    moment leaves both logs whole, and the next run retires the failures and completes."""
    config = write_config(sim_config_text(items=ITEMS, batch_size=4), "c.toml")
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    calls = run_dir / "calls.jsonl"
    lines = calls.read_text(encoding="utf-8").splitlines()
    failed = json.loads(lines[0])
    failed.update(choice=None, error="HTTP 500", readout=None)
    calls.write_text(
        "\n".join([json.dumps(failed, separators=(",", ":")), *lines[1:]]) + "\n",
        encoding="utf-8",
    )
    before = calls.read_bytes()
    with monkeypatch.context() as patch:
        fill_disk_after(patch, 0)
        capsys.readouterr()
        assert main(["run", str(config), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "failures.jsonl" in err[0], err
    assert calls.read_bytes() == before
    assert (
        not (run_dir / "failures.jsonl").exists()
        or (run_dir / "failures.jsonl").read_bytes() == b""
    )
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    stored = keys(run_dir)
    assert len(stored) == ITEMS * (1 + CONDITIONS) and set(stored.values()) == {1}


def test_a_disk_full_before_the_manifest_is_written_leaves_nothing(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Full at the very start: the manifest cannot be written. One line, and the new run
    directory is taken back, so the next run starts afresh."""
    real_write_text = Path.write_text

    def write_text(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.startswith("manifest.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    config = write_config(sim_config_text(items=2), "c.toml")
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", write_text)
        capsys.readouterr()
        assert main(["run", str(config), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0] and "No space left" in err[0], err
    assert not run_dir.exists()
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
