"""Crash safety: a SIGKILL at a random moment loses at most the calls in flight, and a resume
ends with every trial stored exactly once and results identical to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.cli import main
from mindshift.harness.run_store import RunStore
from tests.conftest import sim_config_text, start_run_until_stored, stored_keys

ITEMS = 30
CONDITIONS = 36
SLOW_SIM = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, latency_s = 0.02 }"


def _kill_mid_run(config: Path, run_dir: Path, rng: random.Random) -> None:
    """Start a run and SIGKILL it at a random moment after it has stored something."""
    process = start_run_until_stored(config, run_dir)
    time.sleep(rng.uniform(0.0, 1.5))
    assert process.poll() is None, "the run finished before the kill: make it slower"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.parametrize("kill_seed", [1, 2])
def test_sigkill_then_resume_equals_an_uninterrupted_run(
    kill_seed: int, tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    config = write_config(
        sim_config_text(items=ITEMS, params=SLOW_SIM, batch_size=8, concurrency=2), "c.toml"
    )
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"

    _kill_mid_run(config, interrupted, random.Random(kill_seed))
    stored_before_resume = sum(stored_keys(interrupted).values())
    assert 0 < stored_before_resume < ITEMS * (1 + CONDITIONS)

    assert main(["run", str(config), "--out", str(interrupted)]) == 0
    assert main(["run", str(config), "--out", str(uninterrupted)]) == 0

    keys = stored_keys(interrupted)
    assert len(keys) == ITEMS * (1 + CONDITIONS)
    assert set(keys.values()) == {1}, "a call was stored twice"
    resumed = pd.read_parquet(interrupted / "trials.parquet")
    straight = pd.read_parquet(uninterrupted / "trials.parquet")
    assert len(resumed) == ITEMS * CONDITIONS
    pd.testing.assert_frame_equal(resumed, straight)

    # A third run finds nothing left to do and changes nothing.
    before = (interrupted / "calls.jsonl").read_bytes()
    assert main(["run", str(config), "--out", str(interrupted)]) == 0
    assert (interrupted / "calls.jsonl").read_bytes() == before


def test_a_torn_last_line_is_cut_and_the_run_completes(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    config = write_config(sim_config_text(items=4), "c.toml")
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    calls = run_dir / "calls.jsonl"
    lines = calls.read_bytes().splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]
    calls.write_bytes(b"".join(lines[:-1]) + torn)

    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    keys = stored_keys(run_dir)
    assert len(keys) == 4 * (1 + CONDITIONS) and set(keys.values()) == {1}


def test_a_run_directory_in_use_is_refused(
    tmp_path: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(sim_config_text(items=2), "c.toml")
    run_dir = tmp_path / "run"
    with RunStore(run_dir):
        assert main(["run", str(config), "--out", str(run_dir)]) == 2
    assert "in use by another mindshift process" in capsys.readouterr().err
    assert not (run_dir / "calls.jsonl").exists()


def test_ctrl_c_stops_cleanly_and_the_run_resumes(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    config = write_config(sim_config_text(items=ITEMS, params=SLOW_SIM, batch_size=8), "c.toml")
    run_dir = tmp_path / "run"
    process = start_run_until_stored(config, run_dir, stderr=subprocess.PIPE)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert b"run the same command again to resume" in err
    assert b"Traceback" not in err
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    keys = stored_keys(run_dir)
    assert len(keys) == ITEMS * (1 + CONDITIONS) and set(keys.values()) == {1}
