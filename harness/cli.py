"""The `mindshift` command: the one place that wires config, paradigms, backends and analysis
together and talks to the terminal.

Exit codes: 0 success, 1 a failure that is not the user's (a bug, a model that crashed),
2 bad input (one line on stderr, never a traceback), 130 interrupted (the run resumes).
"""

from __future__ import annotations

import argparse
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
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from harness.config import ExperimentConfig, load_config, parse_config
from harness.errors import UserError
from harness.experiment import execute, prepare
from harness.runner import RunReport

if TYPE_CHECKING:
    import pandas as pd

PriorMode = Literal["auto", "raw", "calibrated"]
FittedMode = Literal["auto", "beta", "tobit"]
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_RUNS_DIR = Path("runs")
DEMO_CONFIG = "demo.toml"

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


class _RichProgress:
    """Draws one bar per model from the runner's progress reports."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, object] = {}

    def start_model(self, model: str, total: int, done: int) -> None:
        self._tasks[model] = self._progress.add_task(model, total=total, completed=done)

    def advance(self, model: str, calls: int) -> None:
        self._progress.advance(self._tasks[model], calls)  # type: ignore[arg-type]


def _progress_bar(unit: str = "calls") -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
    )


def _run(config: ExperimentConfig, run_dir: Path) -> RunReport:
    from paradigms import PARADIGMS

    prepared = prepare(config, PARADIGMS)
    _err.print(f"run directory: {run_dir}", markup=False)
    with _progress_bar() as bar:
        return execute(prepared, run_dir, _RichProgress(bar))


def _report_run(report: RunReport, seconds: float) -> None:
    made = sum(report.calls_made.values())
    skipped = sum(report.calls_already_stored.values())
    _err.print(f"{made} calls made, {skipped} already stored, in {seconds:.1f} s")


def _analyse(run_dir: Path, prior: PriorMode = "auto", fitted_model: FittedMode = "auto") -> Path:
    from analysis import AnalysisInputError, analyse_run

    try:
        analyse_run(run_dir, prior=prior, fitted_model=fitted_model)
    except AnalysisInputError as error:
        raise UserError(str(error)) from None
    return run_dir / "analysis"


def _print_markdown(path: Path) -> None:
    from rich.markdown import Markdown

    _out.print(Markdown(path.read_text(encoding="utf-8")))


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    run_dir = Path(args.out) if args.out else DEFAULT_RUNS_DIR / config.experiment.name
    started = time.perf_counter()
    report = _run(config, run_dir)
    _report_run(report, time.perf_counter() - started)
    _out.print(
        f"calls: {run_dir / 'calls.jsonl'}\ntrials: {run_dir / 'trials.parquet'}", markup=False
    )
    return EXIT_OK


def cmd_analyse(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    out = _analyse(run_dir, args.prior, args.fitted_model)
    _print_markdown(out / "summary.md")
    _out.print(f"summary: {out / 'summary.json'}\nreport: {out / 'report.html'}", markup=False)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from analysis import AnalysisInputError, compare_runs

    out = Path(args.out)
    try:
        compare_runs(args.run_dirs, out, prior=args.prior, fitted_model=args.fitted_model)
    except AnalysisInputError as error:
        raise UserError(str(error)) from None
    _print_markdown(out / "summary.md")
    _out.print(f"tables: {out / 'tables'}\nreport: {out / 'report.html'}", markup=False)
    return EXIT_OK


def cmd_power(args: argparse.Namespace) -> int:
    from harness.power import PowerSettings, power_study

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
    view = Table(title=f"power at alpha = {alpha:g} (± Monte Carlo SE)")
    for column in ("items", "cs", "w_opp", "w_same", "calls/model", "CS bias", "opp > same"):
        view.add_column(column, justify="right")
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
    _out.print(view)
    _out.print(
        "cs: choice_support (log-odds). CS bias: shown - hidden confidence change under "
        "neutral advice; opp > same: w_opposite - w_same of the Tobit fit; both "
        "item-clustered t tests; a detection needs p < alpha and the predicted sign.",
        markup=False,
    )


def demo_config_text() -> str:
    return resources.files("harness").joinpath(DEMO_CONFIG).read_text(encoding="utf-8")


def cmd_demo(args: argparse.Namespace) -> int:
    import tomllib

    config = parse_config(tomllib.loads(demo_config_text()), "built-in demo config")
    run_dir = Path(args.out) if args.out else DEFAULT_RUNS_DIR / "demo"
    started = time.perf_counter()
    report = _run(config, run_dir)
    _report_run(report, time.perf_counter() - started)
    out = _analyse(run_dir)
    _print_demo_summary(out)
    _out.print(f"\nreport: {(out / 'report.html').resolve()}", markup=False)
    return EXIT_OK


def _print_demo_summary(analysis_dir: Path) -> None:
    import json

    summary = json.loads((analysis_dir / "summary.json").read_text(encoding="utf-8"))
    table = Table(title="change of mind (CoM) rate and confidence change, by display")
    for column in (
        "model",
        "trials",
        "initial accuracy",
        "CoM shown",
        "CoM hidden",
        "conf. change shown/neutral",
    ):
        table.add_column(column)
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
    _out.print(table)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def cmd_models(args: argparse.Namespace) -> int:
    from harness.models.registry import PROVIDERS

    table = Table(title="backends and what each can do")
    for column in ("provider", "logprobs", "top-k", "prefill", "prompt lp", "batch", "choice-only"):
        table.add_column(column)
    for provider in PROVIDERS.values():
        caps = provider.capabilities
        table.add_row(
            provider.name,
            _yes(caps.logprobs),
            "all" if caps.top_k_limit is None else str(caps.top_k_limit),
            _yes(caps.prefill),
            _yes(caps.prompt_logprobs),
            _yes(caps.batch),
            _yes(caps.choice_only),
        )
    _out.print(table)
    for provider in PROVIDERS.values():
        _out.print(f"  {provider.summary}", markup=False)
    _out.print(
        "top-k: alternatives returned per token ('all': the full distribution); "
        "prompt lp: log-probabilities of prompt tokens (multi-token options)",
        markup=False,
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mindshift", description="Behavioural experiments on language models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run (or resume) an experiment from a TOML config")
    run.add_argument("config", help="experiment config (TOML)")
    run.add_argument("--out", help="run directory (default: runs/<experiment name>)")
    run.set_defaults(handler=cmd_run)
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
    models = commands.add_parser("models", help="list backends and what each can do")
    models.set_defaults(handler=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except UserError as error:
        _say_error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err.print(
            "interrupted: every finished call is stored; run the same command again to resume"
        )
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
