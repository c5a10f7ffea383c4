"""Initial accuracy: how often the stage-1 answer is the correct option."""

from __future__ import annotations

import pandas as pd

from analysis.schema import STAGE1_COLUMNS


def stage1_from_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The stage-1 table rebuilt from trials.parquet, for runs without a calls.jsonl.

    Every stage-2 trial carries its stage-1 call, so one row per `initial_trial_id` recovers
    the stage-1 answers — but only those that went on to a stage-2 trial.
    """
    rows = trials.drop_duplicates(subset="initial_trial_id")
    table = pd.DataFrame(
        {
            "trial_id": rows["initial_trial_id"],
            "model": rows["model"],
            "item_id": rows["item_id"],
            "correct": rows["correct"],
            "choice": rows["initial_choice"],
        }
    )
    return table.loc[table["choice"].notna(), list(STAGE1_COLUMNS)].reset_index(drop=True)


def initial_accuracy(stage1: pd.DataFrame) -> pd.Series:
    """Per model (index), the share of stage-1 calls whose choice is the correct option."""
    hit = stage1["choice"].astype(str) == stage1["correct"].astype(str)
    return hit.groupby(stage1["model"]).mean().astype(float).rename("accuracy_initial")


def initial_accuracy_table(trials: pd.DataFrame, stage1: pd.DataFrame | None) -> pd.DataFrame:
    """Per model: accuracy_initial, n_initial_calls and the source they were computed from.

    The stage-1 calls (calls.jsonl) are the source of truth, as they include stage-1 answers
    whose stage-2 trials failed; a model without any there (no calls.jsonl, or none of its
    calls in it) falls back on the stage-1 answers recorded in the trials table.
    """
    sources = [(stage1_from_trials(trials), "trials.parquet")]
    if stage1 is not None:
        sources.insert(0, (stage1, "calls.jsonl"))
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
