"""Shared test helpers: small configs and runs of the simulated agent."""

from __future__ import annotations

import os

# Before numpy loads: the tests' matrices are small, and BLAS threads on a busy shared runner
# only contend (a Tobit fit runs ten times slower with them). Subprocesses inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SIM_PARAMS = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"

OPT_IN_MARKERS = ("live_api", "vllm_cpu")
"""Tests that need an outside service and run only when `-m` names them; the only skips CI
accepts (the default `addopts` deselects them anyway)."""


def in_ci() -> bool:
    """True under CI (`CI=true`, as GitHub Actions, GitLab and most runners set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _ci_failure(reason: str) -> str:
    return (
        f"skipped under CI=true: {reason}\n"
        "In CI every claimed check must run: install what the test needs (make test installs "
        "the local, dev and bayes extras) instead of skipping it."
    )


def _skip_reason(longrepr: object) -> str:
    # A skip's longrepr is (path, line, "Skipped: reason").
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI, a skipped test is a failure unless it is an opt-in outside-service test.

    A skip in CI almost always means a missing dependency (`pytest.importorskip`, a model that
    is not installed): the check the README claims silently did not run. Expected failures
    (xfail) are left alone.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    if any(item.get_closest_marker(name) for name in OPT_IN_MARKERS):
        return
    report.outcome = "failed"
    report.longrepr = _ci_failure(_skip_reason(report.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """Under CI, a module skipped at import (a module-level importorskip) fails collection."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci():
        report.outcome = "failed"
        report.longrepr = _ci_failure(_skip_reason(report.longrepr))


def sim_config_text(
    *,
    name: str = "t",
    items: int = 6,
    params: str = SIM_PARAMS,
    extra_paradigm: str = "",
    seed: int = 0,
    concurrency: int = 1,
    batch_size: int | None = None,
) -> str:
    batch = "" if batch_size is None else f"batch_size = {batch_size}\n"
    return (
        f'[experiment]\nname = "{name}"\nparadigm = "change-of-mind"\nseed = {seed}\n\n'
        f"[paradigm]\nitems = {items}\n{extra_paradigm}\n"
        f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {params}\n'
        f"concurrency = {concurrency}\n{batch}"
    )


def pytest_configure(config: pytest.Config) -> None:
    # Ctrl-C as a terminal delivers it. A shell that starts the suite in the background
    # (`make test &`, a CI runner's detached step) hands it SIGINT ignored; Python then
    # installs no KeyboardInterrupt handler, nor do the subprocesses the tests start, and
    # the tests of what Ctrl-C does would fail for the launcher's reason, not the code's.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        "auto_beta: keep the real size threshold at which `--fitted-model auto` picks the "
        "PyMC beta regression (tests/conftest.py raises it for every other test)",
    )


@pytest.fixture(autouse=True)
def _tobit_unless_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fitted_model="auto"` means the Tobit fit in tests, unless a test is marked auto_beta.

    With the bayes extra installed (as `make test` installs it), the report of any run with
    2,000+ trials per model would fit PyMC's four beta-regression variants: minutes per
    analysis, for tests that check other things (recovery, examples, summary keys). The beta
    regression has its own tests (tests/analysis/test_beta_regression.py); an explicit
    `fitted_model="beta"` is not affected, and every choice the real rule makes for Tobit
    (with its reason, word for word, as an analysis in a subprocess writes it) is kept.
    """
    if request.node.get_closest_marker("auto_beta"):
        return
    from mindshift.analysis.beta import fitted_model

    real = fitted_model.choose_kind

    def tobit_for_auto(trials: Any, wanted: Any = "auto") -> tuple[Any, str]:
        kind, reason = real(trials, wanted)
        if kind == "beta" and wanted == "auto":
            return "tobit", "tests: the beta regression runs only where a test asks for it"
        return kind, reason

    monkeypatch.setattr(fitted_model, "choose_kind", tobit_for_auto)


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def stored_keys(run_dir: Path) -> Counter[tuple[str, int]]:
    """How often each (trial_id, stage) is stored in RUN_DIR/calls.jsonl.

    A kill may tear the last line mid-write (the store cuts it on the next open): a line
    without its newline is not a stored record yet. Every other line must parse."""
    whole = (run_dir / "calls.jsonl").read_bytes().split(b"\n")[:-1]
    return Counter((r["trial_id"], r["stage"]) for r in map(json.loads, whole))


def start_run_until_stored(
    config: Path, run_dir: Path, *, stderr: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`mindshift run CONFIG --out RUN_DIR` in a subprocess, returned once it has stored a
    call (so a signal sent next lands in a run that is under way)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mindshift.cli", "run", str(config), "--out", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    calls = run_dir / "calls.jsonl"
    deadline = time.monotonic() + 60
    while not (calls.exists() and calls.stat().st_size > 0):
        assert process.poll() is None, "the run ended before it stored anything"
        assert time.monotonic() < deadline, "the run stored nothing within 60 s"
        time.sleep(0.005)
    return process
