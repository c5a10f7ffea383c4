"""Ctrl-C during a run: a second interrupt a few milliseconds after the first must stop the run
promptly (never hang in asyncio's task cancellation holding the run lock), and the run must
stay resumable, every (trial_id, stage) stored exactly once after the resume."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text, start_run_until_stored, stored_keys

ITEMS = 8
CONDITIONS = 36
SLOW_SIM = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, latency_s = 0.01 }"
TRIES = 10
STOP_WITHIN_S = 15.0


def _interrupt_twice(config: Path, run_dir: Path, gap_s: float) -> int:
    """Start a run, wait until it stored something, send SIGINT twice `gap_s` apart; returns
    the exit code (fails the test if the process does not stop promptly)."""
    process = start_run_until_stored(config, run_dir, stderr=subprocess.PIPE)
    process.send_signal(signal.SIGINT)
    time.sleep(gap_s)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the run hung after two Ctrl-Cs {gap_s * 1000:.1f} ms apart")
    assert b"Traceback" not in err, err.decode(errors="replace")
    return process.returncode


def test_two_quick_interrupts_stop_promptly_and_the_run_resumes(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    config = write_config(
        sim_config_text(items=ITEMS, params=SLOW_SIM, batch_size=4, concurrency=4), "c.toml"
    )
    rng = random.Random(7)
    for attempt in range(TRIES):
        run_dir = tmp_path / f"run{attempt}"
        code = _interrupt_twice(config, run_dir, rng.uniform(0.001, 0.02))
        # 130: interrupted; 0: the run happened to finish between the two signals;
        # -SIGINT: the first signal's clean-up was already done and the interpreter was
        # shutting down, when Python has put SIGINT back to the system's default (its
        # signal module is finalized), so the second one ends the process as it exits.
        assert code in (130, 0, -signal.SIGINT), f"try {attempt}: exit code {code}"
        assert main(["run", str(config), "--out", str(run_dir)]) == 0, f"try {attempt}"
        keys = stored_keys(run_dir)
        assert len(keys) == ITEMS * (1 + CONDITIONS)
        assert set(keys.values()) == {1}, "a call was stored twice"


def test_a_server_stop_cut_short_by_a_second_interrupt_kills_the_server() -> None:
    """A second Ctrl-C cancels the clean-up of the first; a vLLM server mindshift started
    must not be orphaned by that: its process group is killed at once."""
    import asyncio
    import contextlib

    from mindshift.harness.models.vllm_server import VllmServer

    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", stubborn], start_new_session=True, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        server = VllmServer(plan=None)  # type: ignore[arg-type]
        server.process = process

        async def interrupted_stop() -> None:
            stopping = asyncio.create_task(server.stop(grace_s=60.0))
            await asyncio.sleep(0.3)  # SIGTERM sent (and ignored): waiting out the grace
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

        asyncio.run(interrupted_stop())
        assert process.wait(timeout=5) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
