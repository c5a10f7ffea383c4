"""Many models side by side, from several run directories.

Every analysis already writes one table per measure across its models
(`analysis.render.tables.measure_tables`, as `tables/*.csv` beside the report), so a run with
several models has its comparison. `compare_runs(RUN_DIR, ...)` pools several run directories
into one analysis (the same measures, tables and report, figures with a panel per model)
written to an output directory of its own.

Pooling keeps each model's trials, items and stage-1 calls as they were; measures are always
computed per model, so runs need not share items or conditions. A model id used by more than
one run is renamed `<run>/<model>` (the run directory's name; repeated names get -2, -3, ...)
so that no two models are silently merged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from mindshift.analysis.data.load import RunData, load_run
from mindshift.analysis.data.schema import model_ids
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.engines.logodds import BAYES_CLIP
from mindshift.analysis.measures.results import compute_results
from mindshift.analysis.render.outputs import output_lock, write_outputs

RUNS_FILE: Final = "runs.csv"


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """A short distinct label per run directory: its name, with -2, -3 ... on repeats."""
    seen: Counter[str] = Counter()
    labels = []
    for run_dir in run_dirs:
        name = run_dir.resolve().name or "run"
        seen[name] += 1
        labels.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return labels


def pool_runs(
    runs: Sequence[RunData], labels: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """The runs' trials and stage-1 calls as one table each, and the run/model mapping.

    Returns (trials, stage1 or None when no run has calls.jsonl, mapping with columns
    run, run_dir, model_in_run, model).
    """
    count: Counter[str] = Counter()
    for run in runs:
        count.update(set(model_ids(run.trials)))
    trials: list[pd.DataFrame] = []
    stage1: list[pd.DataFrame] = []
    mapping: list[dict[str, Any]] = []
    for run, label in zip(runs, labels, strict=True):
        names = {
            model: (f"{label}/{model}" if count[model] > 1 else model)
            for model in model_ids(run.trials)
        }
        # As read: the pooled table is prepared once, with every run's stage-1 calls.
        trials.append(run.raw_trials.assign(model=run.raw_trials["model"].map(names)))
        if run.stage1 is not None:
            calls = run.stage1.loc[run.stage1["model"].isin(list(names))]
            stage1.append(calls.assign(model=calls["model"].map(names)))
        mapping.extend(
            {"run": label, "run_dir": str(run.run_dir), "model_in_run": m, "model": n}
            for m, n in names.items()
        )
    return (
        pd.concat(trials, ignore_index=True),
        pd.concat(stage1, ignore_index=True) if stage1 else None,
        pd.DataFrame(mapping, columns=["run", "run_dir", "model_in_run", "model"]),
    )


def compare_runs(
    run_dirs: Sequence[Path | str],
    out: Path | str,
    *,
    prior: Prior = "auto",
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
    bayes_clip: float = BAYES_CLIP,
    on_wait: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Analyse several runs together into `out` (summary, tables, figures, report).

    Raises `AnalysisInputError` for a missing or corrupt run directory, or an unwritable
    `out`, or an `out` that holds files other than an analysis (it is replaced as a whole,
    see `analysis.render.outputs`; a second comparison into the same `out` waits for the first,
    telling `on_wait`). Returns the summary (as summary.json).
    """
    paths = [Path(p) for p in run_dirs]
    runs = [load_run(path) for path in paths]
    labels = run_labels(paths)
    trials, stage1, mapping = pool_runs(runs, labels)
    target = Path(out)
    with output_lock(target, on_wait):
        results = compute_results(
            trials, stage1, prior=prior, bayes_clip=bayes_clip, fitted_model=fitted_model
        )
        facts = {
            "runs": "; ".join(
                f"{label} = {path}" for label, path in zip(labels, paths, strict=True)
            ),
            "models": ", ".join(results.models),
        }
        title = f"mindshift comparison — {', '.join(labels)}"
        return write_outputs(results, target, title=title, facts=facts, extra={RUNS_FILE: mapping})
