"""Initial accuracy: how often the stage-1 answer is the correct option."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mindshift.analysis.data.schema import MAIN
from mindshift.analysis.data.stage1 import stage1_from_trials
from mindshift.analysis.measures.registry import (
    HeadlineRow,
    Measure,
    MeasureResults,
    model_rows,
    register,
)


def main_split(stage1: pd.DataFrame) -> pd.DataFrame:
    """The stage-1 calls of the main items (calibration items left out)."""
    if "split" not in stage1.columns:
        return stage1
    return stage1.loc[stage1["split"] == MAIN]


def initial_accuracy(stage1: pd.DataFrame) -> pd.Series:
    """Per model (index), the share of stage-1 calls whose choice is the correct option."""
    hit = stage1["choice"].astype(str) == stage1["correct"].astype(str)
    return hit.groupby(stage1["model"]).mean().astype(float).rename("accuracy_initial")


def initial_accuracy_table(trials: pd.DataFrame, stage1: pd.DataFrame | None) -> pd.DataFrame:
    """Per model: accuracy_initial, n_initial_calls and the source they were computed from.

    Main items only: a calibration item's stage-1 answer is reported with the calibration.

    The stage-1 calls (calls.jsonl) are the source of truth, as they include stage-1 answers
    whose stage-2 trials failed; a model without any there (no calls.jsonl, or none of its
    calls in it) falls back on the stage-1 answers recorded in the trials table.
    """
    sources = [(stage1_from_trials(trials), "trials.parquet")]
    if stage1 is not None:
        sources.insert(0, (main_split(stage1), "calls.jsonl"))
    rows: dict[str, dict[str, object]] = {}
    for table, source in sources:
        accuracy = initial_accuracy(table)
        counts = table["model"].value_counts()
        for model in accuracy.index:
            rows.setdefault(
                str(model),
                {
                    "accuracy_initial": float(accuracy[model]),
                    "n_initial_calls": int(counts[model]),
                    "source": source,
                },
            )
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["accuracy_initial", "n_initial_calls", "source"]
    ).rename_axis("model")


def _accuracy_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """accuracy_initial, its source and the number of stage-1 calls (NaN, None, 0 if none)."""
    rows = model_rows(results.table("accuracy"), model)

    def first(column: str, missing: Any) -> Any:
        return rows[column].iloc[0] if len(rows) else missing

    return {
        "accuracy_initial": first("accuracy_initial", math.nan),
        "accuracy_initial_source": first("source", None),
        "n_initial_calls": first("n_initial_calls", 0),
    }


register(
    Measure(
        key="accuracy",
        title="Initial accuracy",
        function=initial_accuracy_table,
        compute=lambda data: initial_accuracy_table(
            data.prepared.stage1_trials, data.stage1
        ).reset_index(),
        caption="Per model, the share of main-item stage-1 answers that are correct, the "
        "number of stage-1 calls and the file they were counted from.",
        summary=_accuracy_entries,
        scale="rate",
        headline=(HeadlineRow("initial accuracy", column="accuracy_initial", style="rate"),),
    )
)
