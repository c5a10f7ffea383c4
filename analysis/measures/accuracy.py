"""Initial accuracy: how often the stage-1 answer is the correct option."""

from __future__ import annotations

import pandas as pd

from analysis.data.schema import MAIN
from analysis.data.stage1 import stage1_from_trials


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
