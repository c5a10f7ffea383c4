"""Runs against a real HTTP server that fails the way real services do (`harness.testing`).

At a 30 % fault rate (429 with Retry-After, 500, 503, connection resets, stalls past the
timeout, JSON cut short, answers without logprobs) every planned call must end with exactly
one record, a success or a failure with its reason, and nothing may crash; a second run
retries the failures; ten SIGKILLs at random moments, each after the run stored a new call and
before it finished, then a resume, must leave every trial stored exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.cli import EXIT_CALLS_FAILED, main
from mindshift.harness.config import load_config
from mindshift.harness.experiment import execute, prepare
from mindshift.harness.runner import NoProgress
from mindshift.harness.testing.fault_server import FaultRates, FaultServer, FaultServerConfig
from mindshift.paradigms import PARADIGMS

KEY = "sk-fault-test-key-0123456789"
CONDITIONS = 36


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    servers: list[FaultServer] = []

    def start(rate: float = 0.3, faults: FaultRates | None = None, **settings: Any) -> FaultServer:
        config = FaultServerConfig(
            faults=FaultRates.uniform(rate) if faults is None else faults,
            retry_after_s=0.02,
            stall_s=1.5,
            idle_timeout_s=120.0,
            lifetime_s=600.0,
            **settings,
        )
        server = FaultServer(config).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def config_text(base_url: str, *, items: int, concurrency: int = 8, extra: str = "") -> str:
    return (
        '[experiment]\nname = "faults"\nparadigm = "change-of-mind"\nseed = 3\n\n'
        f"[paradigm]\nitems = {items}\n\n"
        '[[models]]\nid = "api"\nspec = "openai:fault-model"\n'
        f'base_url = "{base_url}"\nconcurrency = {concurrency}\ntimeout_s = 0.3\n'
        f"retry_backoff_s = 0.05\n{extra}"
    )


def records(run_dir: Path, name: str = "calls.jsonl") -> list[dict[str, Any]]:
    path = run_dir / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_every_trial_once(run_dir: Path, items: int) -> list[dict[str, Any]]:
    """Every planned call has exactly one record: a success, or a failure with a reason."""
    stored = records(run_dir)
    keys = Counter((r["trial_id"], r["stage"]) for r in stored)
    assert set(keys.values()) == {1}, "a call was stored twice"
    assert len(keys) == items * (1 + CONDITIONS)
    stage1 = {r["trial_id"]: r for r in stored if r["stage"] == 1}
    assert len(stage1) == items
    for record in stored:
        if record["error"] is None:
            assert record["choice"] in record["item"]["labels"]
            assert record["readout"]["probs"] is not None
        else:
            assert record["choice"] is None
            assert record["error"].strip()
        if record["stage"] == 2:
            first = stage1[record["initial_trial_id"]]
            if first["error"] is not None:
                assert record["error"].startswith("not run: its stage-1 call failed")
    return stored


def test_at_30_percent_faults_every_trial_ends_stored_once_and_nothing_crashes(
    fault_server: Callable[..., FaultServer],
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = fault_server(0.3, seed=11)
    items = 8
    config = write_config(config_text(server.base_url, items=items))
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_CALLS_FAILED
    stored = check_every_trial_once(run_dir, items)

    # Every kind of fault happened, and the runner saw them: transient ones were retried
    # (their errors kept with the call), the rest are failures with their reason.
    assert all(server.stats[kind] > 0 for kind in FaultRates().as_dict()), server.stats
    earlier = [error for r in stored for error in r["attempt_errors"]]
    assert any("HTTP 429" in e for e in earlier)
    assert any("HTTP 500" in e for e in earlier)
    assert any("HTTP 503" in e for e in earlier)
    assert any("malformed JSON" in e for e in earlier)
    assert any("Timeout" in e or "timed out" in e for e in earlier)
    assert any("Connection" in e for e in earlier)
    assert all(r["attempts"] == 1 + len(r["attempt_errors"]) for r in stored if r["attempts"])
    failures = [r for r in stored if r["error"] is not None]
    assert any("no logprobs" in r["error"] for r in failures)
    successes = [r for r in stored if r["error"] is None]
    assert len(successes) > 0.7 * len(stored)

    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == sum(1 for r in successes if r["stage"] == 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "retried" in err and "calls failed" in err

    # --skip-failed keeps the failures: nothing to do, nothing written.
    before = (run_dir / "calls.jsonl").read_bytes()
    assert main(["run", str(config), "--out", str(run_dir), "--skip-failed"]) == 0
    assert (run_dir / "calls.jsonl").read_bytes() == before

    # A plain re-run retries them: their old records move to failures.jsonl, and every
    # trial is still stored exactly once. Its exit code says whether a retry failed again.
    code = main(["run", str(config), "--out", str(run_dir)])
    again = check_every_trial_once(run_dir, items)
    assert code == (EXIT_CALLS_FAILED if any(r["error"] for r in again) else 0)
    retired = records(run_dir, "failures.jsonl")
    assert len(retired) == len(failures)
    assert all(r["retired_at"] and r["error"] for r in retired)
    assert sum(r["error"] is not None for r in again) < len(failures)
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == sum(1 for r in again if r["error"] is None and r["stage"] == 2)


class Sink(NoProgress):
    """Counts what the runner reports to the progress bar."""

    def __init__(self) -> None:
        self.limits: list[int] = []
        self.retries = 0
        self.failed = 0

    def advance(self, model: str, calls: int, failed: int = 0) -> None:
        self.failed += failed

    def retrying(self, model: str, calls: int) -> None:
        self.retries += calls

    def concurrency(self, model: str, limit: int) -> None:
        self.limits.append(limit)


def test_rate_limits_lower_the_concurrency_and_the_progress_bar_sees_retries(
    fault_server: Callable[..., FaultServer], tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    # Half the requests are rate-limited: they are retried until they pass.
    server = fault_server(faults=FaultRates(rate_limit=0.5), seed=5)
    items = 3
    config = load_config(write_config(config_text(server.base_url, items=items, concurrency=16)))
    sink = Sink()
    report = execute(prepare(config, PARADIGMS), tmp_path / "run", sink)
    stored = check_every_trial_once(tmp_path / "run", items)
    assert server.stats["rate_limit"] > 0
    assert sink.retries == report.retries["api"] > 0
    assert min(sink.limits) < 16  # halved on 429s
    assert sink.failed == report.calls_failed["api"] == sum(r["error"] is not None for r in stored)


def _stored_keys(run_dir: Path) -> set[tuple[str, int]]:
    """The (trial_id, stage) keys in calls.jsonl, as a killed run may have left it."""
    return {(r["trial_id"], r["stage"]) for r in records_tolerant(run_dir)}


def _kill_after_progress(
    config: Path, run_dir: Path, rng: random.Random, planned: int
) -> tuple[int, int, int]:
    """Start a run, wait until it has stored a call the directory did not hold, then SIGKILL
    it at a random moment soon after. Returns the calls stored before the start, after the
    kill, and new with this run (a resume first moves failed records aside, so the second
    count can be below the first); fails when the run stored nothing new or finished before
    the kill."""
    before = _stored_keys(run_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "mindshift.cli", "run", str(config), "--out", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _stored_keys(run_dir) - before:
        assert process.poll() is None, "the run ended before it stored a new call"
        assert time.monotonic() < deadline, "the run stored nothing new in 60 s"
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.6))
    assert process.poll() is None, "the run finished before its kill: make the run longer"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    after = _stored_keys(run_dir)
    # The kill landed after this run stored something, and before the run was complete.
    assert after - before, "no call of this run was stored before the kill"
    assert len(after) < planned
    return len(before), len(after), len(after - before)


def _kill_during_startup(config: Path, run_dir: Path, rng: random.Random) -> None:
    """SIGKILL a run in its first moments: loading, preflight, moving failures aside."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mindshift.cli", "run", str(config), "--out", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(rng.uniform(0.2, 1.5))
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_ten_sigkills_then_a_resume_leave_every_trial_stored_exactly_once(
    fault_server: Callable[..., FaultServer], tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    server = fault_server(0.3, seed=23, latency_s=0.02)
    items = 16
    planned = items * (1 + CONDITIONS)
    config = write_config(config_text(server.base_url, items=items, concurrency=6))
    run_dir = tmp_path / "run"
    rng = random.Random(20261126)
    counts = []
    for kill in range(10):
        counts.append(_kill_after_progress(config, run_dir, rng, planned))
        # Whatever the moment of the kill, no call is ever stored twice.
        keys = Counter((r["trial_id"], r["stage"]) for r in records_tolerant(run_dir))
        assert set(keys.values()) == {1}
        if kill % 3 == 2:  # and now and then a kill before the run has done anything
            _kill_during_startup(config, run_dir, rng)
            keys = Counter((r["trial_id"], r["stage"]) for r in records_tolerant(run_dir))
            assert set(keys.values()) == {1}
    # Every kill found the run part-way: something new stored, fewer calls than planned.
    assert len(counts) == 10
    assert all(new > 0 and 0 < after < planned for _, after, new in counts), counts
    code = main(["run", str(config), "--out", str(run_dir)])
    stored = check_every_trial_once(run_dir, items)
    # At a 30 % fault rate some calls fail for good: the exit code says so.
    assert code == (EXIT_CALLS_FAILED if any(r["error"] for r in stored) else 0)


def records_tolerant(run_dir: Path) -> list[dict[str, Any]]:
    """The records of calls.jsonl as a killed run left it (a torn last line skipped)."""
    path = run_dir / "calls.jsonl"
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[:-1] if line.strip()]
