"""mindshift from Python: run an experiment, load a run, analyse it, in a script or a notebook.

    import mindshift

    result = mindshift.run("my-experiment.toml")     # or out="runs/x"; result.calls_failed
    analysis = mindshift.analyse(result.run_dir)     # writes RUN_DIR/analysis, as the CLI does
    analysis.summary["models"]["sim"]["oucs"]        # = summary.json
    analysis.results.table("oucs")                   # the table the report shows
    run = mindshift.load(result.run_dir)             # run.trials: what every measure reads

Each function goes the way its command goes (`mindshift run`, `mindshift analyse`), through
the same engine and analysis code, and writes the same files. Bad input raises
`harness.errors.UserError` (a `ConfigError` for the config, a `RunDirError` for the run
directory) with the command's one-line message, instead of exiting.

In a notebook, a cell runs inside the kernel's event loop, where `asyncio.run` cannot start
another loop. `run` then makes the run in a worker thread with a loop of its own and waits for
it. Signals reach only the main thread, so the interrupt (Ctrl-C, Jupyter's "interrupt the
kernel") raises KeyboardInterrupt in the waiting cell, and `run` passes it on to the worker
(`harness.interrupts.WorkerInterrupt`): the first interrupt stops the run cleanly and a second
cuts its clean-up short, as on the command line. `run` returns only once the worker has
stopped, and then raises KeyboardInterrupt. Every finished call is stored, the run directory is
unlocked, and calling `run` again resumes.

Importing `mindshift` imports none of this: the package resolves these names on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar, get_args

from mindshift.harness.batch_runner import DEFAULT_POLL_S
from mindshift.harness.config import ExperimentConfig, load_config, parse_config
from mindshift.harness.errors import ConfigError, RunDirError, UserError
from mindshift.harness.experiment import check_run_dir, execute, prepare
from mindshift.harness.interrupts import WorkerInterrupt
from mindshift.harness.run_dir import check_logs, inspect_run_dir, load_logs
from mindshift.harness.run_format import CALLS_FILE, TRIALS_FILE
from mindshift.harness.runner import ProgressSink, RunReport
from mindshift.harness.trials_table import build_trials_table, write_trials_table
from mindshift.paradigms.registry import installed_paradigms

if TYPE_CHECKING:
    from rich.progress import Progress

    from mindshift.analysis import RunData
    from mindshift.analysis.analyse import RunAnalysis

T = TypeVar("T")

ConfigSource: TypeAlias = "str | os.PathLike[str] | ExperimentConfig | Mapping[str, Any]"
"""What `run` takes as its experiment: the path of a TOML config file (a `str` is always a
path), a validated `ExperimentConfig`, or a mapping laid out as the TOML document is
(`tomllib.loads(text)` gives one from TOML text)."""
Prior: TypeAlias = Literal["auto", "raw", "calibrated"]
FittedModel: TypeAlias = Literal["auto", "beta", "tobit"]

DEFAULT_RUNS_DIR: Final = Path("runs")
"""Where a run goes without `out`: runs/<experiment name>, as `mindshift run`."""
DEFAULT_BAYES_CLIP: Final = 0.01
"""The analysis's default clip bound (`analysis.engines.logodds.BAYES_CLIP`, which a test
checks this against): kept here so that `run` does not import the analysis."""


@dataclass(frozen=True)
class RunResult:
    """What `run` did: the run directory, and per model id the calls planned, made by this
    call, stored before it, and failed.

    A failed call does not make `run` raise: its record in calls.jsonl says why, and running
    again retries it (`skip_failed=True` keeps it).
    """

    run_dir: Path
    calls_planned: dict[str, int]
    """Every call of the design, per model."""
    calls_made: dict[str, int]
    """Records this call stored (successes and failures, "not run" records included)."""
    calls_already_stored: dict[str, int]
    """Calls found stored when it began (a resume's)."""
    calls_failed: dict[str, int]
    """Of `calls_made`, the failures."""
    retries: dict[str, int]
    """Attempts that failed transiently and were tried again."""

    @classmethod
    def of(cls, run_dir: Path, report: RunReport) -> RunResult:
        return cls(
            run_dir=run_dir,
            calls_planned=dict(report.calls_planned),
            calls_made=dict(report.calls_made),
            calls_already_stored=dict(report.calls_already_stored),
            calls_failed=dict(report.calls_failed),
            retries=dict(report.retries),
        )

    @property
    def calls_path(self) -> Path:
        """RUN_DIR/calls.jsonl: one record per finished call."""
        return self.run_dir / CALLS_FILE

    @property
    def trials_path(self) -> Path:
        """RUN_DIR/trials.parquet: one row per later-turn trial, joined with its turn 1."""
        return self.run_dir / TRIALS_FILE

    @property
    def failed(self) -> int:
        """Calls of this run that failed, all models together."""
        return sum(self.calls_failed.values())

    def describe(self) -> str:
        """What the run did, in the words `mindshift run` prints."""
        made, stored = sum(self.calls_made.values()), sum(self.calls_already_stored.values())
        lines = [f"{made} calls made, {stored} already stored"]
        if retried := sum(self.retries.values()):
            lines.append(f"{retried} attempts failed transiently and were retried")
        if self.failed:
            lines.append(
                f"{self.failed} calls failed (their records in calls.jsonl say why); running "
                "again retries them (skip_failed=True keeps them)"
            )
        lines.append(f"run directory: {self.run_dir}")
        return "\n".join(lines)


def read_config(source: ConfigSource) -> ExperimentConfig:
    """The validated experiment config from a path, a mapping or a config; `ConfigError` with
    the one-line reason `mindshift run` gives."""
    if isinstance(source, ExperimentConfig):
        return source
    if isinstance(source, Mapping):
        return parse_config(dict(source), "config")
    if isinstance(source, str) and "\n" in source:
        raise ConfigError(
            "a config as a string is the path of a TOML file; for TOML text, pass "
            "tomllib.loads(text)"
        )
    if isinstance(source, str | os.PathLike):
        return load_config(Path(source))
    raise TypeError(
        "the experiment is a config file's path, an ExperimentConfig or a mapping, "
        f"not {type(source).__name__}"
    )


def run(
    config: ConfigSource,
    out: str | os.PathLike[str] | None = None,
    *,
    skip_failed: bool = False,
    batch: bool = False,
    batch_poll_s: float = DEFAULT_POLL_S,
    progress: bool | ProgressSink = False,
) -> RunResult:
    """Run (or resume) an experiment into `out` (default: runs/<experiment name>) and write
    its trials.parquet, as `mindshift run CONFIG --out OUT` does.

    `config`: see `ConfigSource`. `skip_failed`: keep the stored failed calls instead of
    retrying them. `batch`: send the calls of models with a batch API as batch waves, asking
    about unfinished batches every `batch_poll_s` seconds. `progress`: True draws the command's
    progress bars (on stderr; in Jupyter through ipywidgets), or give your own `ProgressSink`.

    Works inside a running event loop (a notebook cell) too: see the module docstring, also for
    what an interrupt does. Everything is checked before the run directory is touched (a
    `UserError` leaves it as it was); a call that fails is stored as failed and counted in
    the result.
    """
    experiment = read_config(config)
    run_dir = Path(out) if out is not None else DEFAULT_RUNS_DIR / experiment.experiment.name
    prepared = prepare(experiment, installed_paradigms())
    check_run_dir(prepared, run_dir)  # before any bar is drawn, as the command does
    bar: Progress | None = None
    sink: ProgressSink | None = None
    if progress is True:
        bar, sink = _progress_bars({model.id: model.concurrency for model in experiment.models})
    elif progress is not False:
        sink = progress

    def make_run() -> RunReport:
        return execute(
            prepared,
            run_dir,
            sink,
            retry_failed=not skip_failed,
            batch=batch,
            batch_poll_s=batch_poll_s,
            on_start=None if bar is None else bar.start,
        )

    try:
        report = _in_worker_thread(make_run) if _event_loop_running() else make_run()
    except BaseException:
        if bar is not None:
            bar.live.transient = True  # a failed run's bars give way to its error
        raise
    finally:
        if bar is not None:
            bar.stop()
    return RunResult.of(run_dir, report)


def load(
    run_dir: str | os.PathLike[str],
    *,
    prior: Prior = "auto",
    bayes_clip: float = DEFAULT_BAYES_CLIP,
) -> RunData:
    """The run as `mindshift analyse` reads it (`analysis.load_run`): `.trials` is the
    prepared trials table every measure reads (framed on the displayed answer, on the `prior`
    confidence scale, with the Bayes posterior clipped at `bayes_clip`), `.raw_trials` the
    table as stored, `.stage1` the turn-1 calls, `.manifest` the run's manifest.

    A trials.parquet older than calls.jsonl (a run stopped before it rebuilt it) is rebuilt
    first, as `mindshift analyse` does. `UserError` when RUN_DIR is not a readable run.
    """
    from mindshift.analysis import AnalysisInputError, load_run

    _check_options(prior, bayes_clip)
    path = _with_current_trials(Path(run_dir))
    try:
        return load_run(path, prior=prior, bayes_clip=bayes_clip)
    except AnalysisInputError as error:
        raise UserError(str(error)) from None


def analyse(
    run_dir: str | os.PathLike[str],
    *,
    prior: Prior = "auto",
    fitted_model: FittedModel = "auto",
    bayes_clip: float = DEFAULT_BAYES_CLIP,
) -> RunAnalysis:
    """Analyse RUN_DIR as `mindshift analyse RUN_DIR` does, writing RUN_DIR/analysis
    (summary.json, summary.md, tables, figures, report.html), and return what the report
    shows: `.summary` (summary.json's content), `.results` (every measure, the object the
    summary, tables, figures and report are rendered from), `.run` (as `load` returns it).

    The options are the command's: `prior` (--prior: the confidence scale, "auto", "raw" or
    "calibrated"), `fitted_model` (--fitted-model: "auto", "beta" or "tobit") and `bayes_clip`
    (--bayes-clip: 0 <= x < 0.5; 0 is exact Bayes). `UserError` when RUN_DIR is not a
    readable run or its analysis cannot be written.
    """
    from mindshift.analysis import AnalysisInputError
    from mindshift.analysis.analyse import analyse_run_in_full

    _check_options(prior, bayes_clip, fitted_model)
    path = _with_current_trials(Path(run_dir))
    try:
        return analyse_run_in_full(
            path, prior=prior, fitted_model=fitted_model, bayes_clip=bayes_clip
        )
    except AnalysisInputError as error:
        raise UserError(str(error)) from None


def _check_options(prior: str, bayes_clip: float, fitted_model: str = "auto") -> None:
    """The analysis options checked before anything is read or written (the command's
    argparse choices)."""
    from mindshift.analysis import AnalysisInputError, check_bound

    for name, value, known in (
        ("prior", prior, get_args(Prior)),
        ("fitted_model", fitted_model, get_args(FittedModel)),
    ):
        if value not in known:
            raise UserError(f"unknown {name} {value!r} (known: {', '.join(known)})")
    try:
        check_bound(bayes_clip)
    except AnalysisInputError as error:
        raise UserError(str(error)) from None


def _with_current_trials(run_dir: Path) -> Path:
    """RUN_DIR, its logs checked and its trials.parquet rebuilt from calls.jsonl when that
    changed since the table was built: what `mindshift analyse` does before it analyses."""
    from mindshift.cli import _paradigm_of_run, _trials_table_state

    state = inspect_run_dir(run_dir, for_run=False)
    if not state.exists:
        raise UserError(f"run directory not found: {run_dir}")
    table_state = _trials_table_state(state)
    if table_state == "current":
        check_logs(state, calls=False)  # calls.jsonl is the log the table was built from
    elif table_state in ("unstamped", "absent"):
        check_logs(state)
    else:
        paradigm = _paradigm_of_run(state)
        records = load_logs(state, strict=True)
        try:
            write_trials_table(run_dir, build_trials_table(records.values(), paradigm))
        except OSError as error:
            raise RunDirError(
                f"{run_dir / TRIALS_FILE} is older than {CALLS_FILE} (a run stopped before it "
                f"was rebuilt) and cannot be rebuilt: {error.strerror or error}"
            ) from None
    return run_dir


def _progress_bars(concurrency: dict[str, int]) -> tuple[Progress, ProgressSink]:
    """The command's progress bars: one per model, with its retries, failures and throttled
    concurrency."""
    from mindshift.cli import _progress_bar, _RichProgress

    bar = _progress_bar()
    return bar, _RichProgress(bar, concurrency)


def _event_loop_running() -> bool:
    """True inside a running event loop (a notebook cell, a coroutine), where `asyncio.run`
    refuses to start another."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_worker_thread(work: Callable[[], T]) -> T:
    """`work()` made in a thread of its own, where it may start an event loop, and waited for
    here. A KeyboardInterrupt while waiting is passed on to it (`WorkerInterrupt`); this
    returns only once the worker has stopped, raising KeyboardInterrupt if it was interrupted.
    """
    interrupt = WorkerInterrupt()
    outcome: Future[T] = Future()

    def work_in_thread() -> None:
        with interrupt.bound():
            try:
                outcome.set_result(work())
            except BaseException as error:  # noqa: BLE001 - raised again by the waiting thread
                outcome.set_exception(error)

    interrupted = False
    with _interrupts_raise():
        threading.Thread(target=work_in_thread, name="mindshift-run", daemon=True).start()
        while not outcome.done():
            try:
                outcome.exception()  # waits for the worker, without raising what it raised
            except KeyboardInterrupt:
                interrupted = True
                interrupt.interrupt()
    result = outcome.result()
    if interrupted:
        raise KeyboardInterrupt  # the run finished as the interrupt came in
    return result


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here, whoever handles SIGINT around us.

    The caller's loop is blocked while `run` waits, so a loop's own SIGINT handler would wait
    for nothing: `asyncio.run`'s cancels the task that called `run`, which notices only when
    `run` returns, and IPython's handler for a cell that awaits sets a future the blocked loop
    never sees. Python's default handler raises at once. Only the main thread may set it; one
    that ignores SIGINT (or leaves it to the system) is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or previous is signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
