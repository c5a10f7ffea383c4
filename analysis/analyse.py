"""The entry point: analyse a run directory and write summary.json, figures and report.html."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from mindshift.analysis.data.examples import choose_examples
from mindshift.analysis.data.load import RunData, load_run
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.engines.logodds import BAYES_CLIP
from mindshift.analysis.measures.results import Results, results_for_run
from mindshift.analysis.render.context import ReportContext, ViewerLink, protocol_of
from mindshift.analysis.render.outputs import output_lock, write_outputs
from mindshift.harness.errors import RunDirError, UserError
from mindshift.harness.run_format import CALLS_FILE
from mindshift.harness.transcripts import VIEWER_FILE, Transcript, read_transcripts_of
from mindshift.paradigms.registry import installed_paradigms

OUTPUT_DIR: Final = "analysis"


@dataclass(frozen=True)
class RunAnalysis:
    """One analysed run: what was read, what every output was rendered from, and where the
    outputs went."""

    run: RunData
    """The run as `load_run` read it (`.trials`: the prepared trials the measures read)."""
    results: Results
    """Every measure: what summary.json, the tables, the figures and report.html show."""
    summary: dict[str, Any]
    """The content of summary.json (NaN as None)."""
    out_dir: Path
    """RUN_DIR/analysis."""


def _facts(run: RunData) -> dict[str, str]:
    """Short lines about the run for the report's header, from the manifest where present.

    The manifest belongs to the harness and may grow or change shape: every field is looked
    up defensively, and one that is missing is simply not shown.
    """
    facts = {"run directory": str(run.run_dir)}
    manifest = run.manifest
    config = manifest.get("config")
    config = config if isinstance(config, dict) else {}
    experiment = config.get("experiment")
    if isinstance(experiment, dict) and experiment.get("name") is not None:
        facts["experiment"] = str(experiment["name"])
    if manifest.get("started_at") is not None:
        facts["started"] = str(manifest["started_at"])
    git = manifest.get("git")
    if isinstance(git, dict) and git.get("commit"):
        facts["git commit"] = str(git["commit"]) + (" (dirty)" if git.get("dirty") else "")
    models = config.get("models")
    if isinstance(models, list):
        specs = [
            f"{m.get('id')} = {m.get('spec')}"
            + (f" {json.dumps(m['params'], sort_keys=True)}" if m.get("params") else "")
            for m in models
            if isinstance(m, dict)
        ]
        if specs:
            facts["models"] = "; ".join(specs)
    return facts


def _report_context(run: RunData) -> ReportContext:
    """The protocol, one example trial per condition and the trial browser, for the report.

    All three are informative: a paradigm that is not installed here is named without its
    description, and a calls.jsonl that cannot be read as call records (a table assembled
    by hand) gives no examples rather than an error.
    """
    config = run.manifest.get("config")
    experiment = config.get("experiment") if isinstance(config, dict) else None
    name = experiment.get("paradigm") if isinstance(experiment, dict) else None
    protocol = None
    if isinstance(name, str):
        try:
            paradigm = installed_paradigms()[name]
        except (KeyError, UserError):
            paradigm = None
        protocol = protocol_of(name, paradigm)
    examples: dict[str, Transcript] = {}
    if (run.run_dir / CALLS_FILE).is_file():
        choice = choose_examples(run.raw_trials)
        try:
            transcripts = read_transcripts_of(run.run_dir, choice.keys, strict=False)
        except (RunDirError, OSError):
            transcripts = []
        by_condition = {t.condition: t for t in transcripts if not t.failed}
        examples = {c: by_condition[c] for c in choice.conditions if c in by_condition}
    viewer = ViewerLink(written=(run.run_dir / VIEWER_FILE).is_file(), run_dir=str(run.run_dir))
    return ReportContext(protocol=protocol, examples=examples, viewer=viewer)


def analyse_run(
    run_dir: Path | str,
    *,
    prior: Prior = "auto",
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
    bayes_clip: float = BAYES_CLIP,
    on_wait: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Analyse RUN_DIR: write RUN_DIR/analysis/{summary.json, summary.md, *.png, report.html}.

    `prior` picks the confidence scale (see `analysis.data.temperature`); `fitted_model`
    whether the report's fitted-model section may run the beta regression (see
    `analysis.beta.fitted_model`); `bayes_clip` the Bayes baseline's clip bound
    (`analysis.engines.logodds`; 0 = exact Bayes). The analysis directory is replaced as a
    whole, and two analyses of one run are serialised: the second waits for the first
    (`on_wait`, if given, hears a sentence saying so; see `analysis.render.outputs`). Returns
    the summary (the content of summary.json, NaN as None; `analyse_run_in_full` returns the
    results and the loaded run with it). Raises `AnalysisInputError` when the run directory
    is missing, empty or corrupt, or the analysis cannot be written into it.
    """
    return analyse_run_in_full(
        run_dir, prior=prior, fitted_model=fitted_model, bayes_clip=bayes_clip, on_wait=on_wait
    ).summary


def analyse_run_in_full(
    run_dir: Path | str,
    *,
    prior: Prior = "auto",
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
    bayes_clip: float = BAYES_CLIP,
    on_wait: Callable[[str], None] | None = None,
) -> RunAnalysis:
    """`analyse_run`, returning with the summary the run it read and the results every output
    was rendered from."""
    # Read first: a directory that is not a run is refused before a lock file is made in it.
    run = load_run(run_dir, prior=prior, bayes_clip=bayes_clip)
    out = run.run_dir / OUTPUT_DIR
    with output_lock(out, on_wait):
        results = results_for_run(run, fitted_model=fitted_model)
        facts = _facts(run)
        title = f"mindshift analysis — {facts.get('experiment', run.run_dir.name)}"
        summary = write_outputs(
            results, out, title=title, facts=facts, context=_report_context(run)
        )
    return RunAnalysis(run=run, results=results, summary=summary, out_dir=out)
