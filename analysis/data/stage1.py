"""The stage-1 table: one row per stage-1 call that produced a choice, completed from the trials.

The stage-1 calls (calls.jsonl) are read by `analysis.data.load`; a run without them, or a call
without the probabilities a readout records, is completed from what every stage-2 trial keeps
of its stage-1 call. Initial accuracy and temperature scaling are computed from this table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mindshift.analysis.data.schema import MAIN, validate_stage1


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
