"""Initial accuracy: how often the stage-1 answer is the correct option."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import MAIN, validate_stage1


def stage1_from_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The stage-1 table rebuilt from trials.parquet, for runs without a calls.jsonl.

    Every stage-2 trial carries its stage-1 call, so one row per `initial_trial_id` recovers
    the stage-1 answers — but only those that went on to a stage-2 trial (never a calibration
    item's). For two options the probabilities are rebuilt from the confidence in the chosen
    option, in the order (correct, other); with more options they are unknown.
    """
    rows = trials.drop_duplicates(subset="initial_trial_id")
    rows = rows.loc[rows["initial_choice"].notna()]
    confidence = rows["initial_confidence"].to_numpy(np.float64)
    hit = rows["initial_correct"].to_numpy(bool)
    binary = rows["n_options"].to_numpy() == 2
    p_correct = np.where(hit, confidence, 1.0 - confidence)
    probs = [
        (float(p), 1.0 - float(p)) if two and np.isfinite(p) else None
        for p, two in zip(p_correct, binary, strict=True)
    ]
    table = pd.DataFrame(
        {
            "trial_id": rows["initial_trial_id"].to_numpy(),
            "model": rows["model"].to_numpy(),
            "item_id": rows["item_id"].to_numpy(),
            "correct": rows["correct"].to_numpy(),
            "choice": rows["initial_choice"].to_numpy(),
            "split": MAIN,
            "probs": probs,
            "correct_index": np.where(binary, 0, -1),
            "choice_index": np.where(binary, np.where(hit, 0, 1), -1),
        }
    )
    return validate_stage1(table, source="trials.parquet")


def complete_stage1(stage1: pd.DataFrame | None, trials: pd.DataFrame) -> pd.DataFrame:
    """The stage-1 table with what the trials know filled in.

    A model with no stage-1 calls in `stage1` (or no `stage1` at all) gets the rows rebuilt
    from the trials; a main-item call without probabilities (a calls.jsonl written without
    readouts) gets them from its trials, where they recorded the confidence.
    """
    rebuilt = stage1_from_trials(trials)
    if stage1 is None:
        return rebuilt
    calls = validate_stage1(stage1)
    missing = rebuilt.loc[~rebuilt["model"].isin(set(calls["model"]))]
    lookup = rebuilt.set_index("trial_id")
    blank = calls["probs"].isna() & calls["trial_id"].isin(lookup.index)
    if blank.any():
        ids = calls.loc[blank, "trial_id"]
        for name in ("probs", "correct_index", "choice_index"):
            calls.loc[blank, name] = lookup.loc[ids, name].to_numpy()
    return validate_stage1(pd.concat([calls, missing], ignore_index=True))


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
