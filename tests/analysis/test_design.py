"""The design table reads the design back from the data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from mindshift.analysis import design_table

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def test_design_hand_case(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"item_id": "a", "display": "hidden", "advice": "opposite", "accuracy": 0.7},
            {"item_id": "a", "display": "shown", "advice": "same", "accuracy": 0.9},
            {
                "item_id": "b",
                "display": "shown",
                "advice": "same",
                "accuracy": 0.9,
                "final_prob_initial": float("nan"),
            },
            {
                "item_id": "b",
                "display": "shown",
                "advice": "same",
                "accuracy": 0.9,
                "final_choice": None,
            },  # a failed call: not a trial
        ]
    )
    stage1 = pd.DataFrame(
        {
            "trial_id": ["c1", "c2"],
            "model": "m",
            "item_id": ["x", "y"],
            "correct": "A",
            "choice": "A",
            "split": "calibration",
        }
    )
    row = design_table(trials, stage1).iloc[0]
    assert row["items"] == 2 and row["conditions"] == 2
    assert row["displays"] == "shown, hidden" and row["advice"] == "same, opposite"
    assert row["accuracies"] == "70 %, 90 %"
    assert row["trials"] == 3 and row["trials_with_confidence"] == 2
    assert row["calibration_items"] == 2
