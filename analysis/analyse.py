"""The entry point: analyse a run directory and write summary.json, figures and report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from analysis.errors import AnalysisInputError
from analysis.figures import render_figures
from analysis.load import RunData, load_run
from analysis.report import render_report
from analysis.summary import summarise

OUTPUT_DIR: Final = "analysis"
SUMMARY_FILE: Final = "summary.json"
REPORT_FILE: Final = "report.html"


def _write_atomic(path: Path, data: bytes) -> None:
    # Write then rename: a crash mid-write never leaves a half summary.json that an outside
    # check (or a later run of this function) would read as corrupt.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


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


def analyse_run(run_dir: Path | str) -> dict[str, Any]:
    """Analyse RUN_DIR: write RUN_DIR/analysis/{summary.json, *.png, report.html}.

    Returns the summary (the same content as summary.json, NaN as None). Raises
    `AnalysisInputError` when the run directory is missing, empty or corrupt, or the
    analysis cannot be written into it. Everything is computed before the first file is
    written, so a failure leaves an earlier analysis untouched.
    """
    run = load_run(run_dir)
    summary = summarise(run.trials, run.stage1)
    figures = render_figures(run.trials)
    facts = _facts(run)
    title = f"mindshift analysis — {facts.get('experiment', run.run_dir.name)}"
    report = render_report(summary, figures, title=title, facts=facts)
    outputs = {
        SUMMARY_FILE: (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode("utf-8"),
        **figures,
        REPORT_FILE: report.encode("utf-8"),
    }
    out = run.run_dir / OUTPUT_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in outputs.items():
            _write_atomic(out / name, data)
    # A read-only or full run directory is the user's to fix: one line, not a traceback.
    except OSError as error:
        raise AnalysisInputError(f"cannot write the analysis into {out}: {error}") from error
    return summary
