"""Confidence change against hand-computed means."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import confidence_change

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]
NAN = float("nan")


def test_cell_means(make_trials: Build) -> None:
    trials = make_trials(
        [
            # shown/neutral: +0.1 and +0.3 -> mean +0.2
            {"display": "shown", "initial_confidence": 0.7, "final_prob_initial": 0.8},
            {"display": "shown", "initial_confidence": 0.6, "final_prob_initial": 0.9},
            # hidden/opposite: -0.4 and -0.2 -> mean -0.3; a censored readout is left out
            {"advice": "opposite", "initial_confidence": 0.9, "final_prob_initial": 0.5},
            {"advice": "opposite", "initial_confidence": 0.8, "final_prob_initial": 0.6},
            {"advice": "opposite", "initial_confidence": NAN, "final_prob_initial": 0.1},
            {"advice": "opposite", "initial_confidence": 0.8, "final_prob_initial": NAN},
        ]
    )
    table = confidence_change(trials).set_index(["display", "advice"])
    assert table.loc[("shown", "neutral"), "mean"] == pytest.approx(0.2)
    assert table.loc[("hidden", "opposite"), "mean"] == pytest.approx(-0.3)
    assert table.loc[("hidden", "opposite"), "n"] == 2
    # SEM of [-0.4, -0.2]: sd 0.141421 / sqrt(2) = 0.1
    assert table.loc[("hidden", "opposite"), "sem"] == pytest.approx(0.1)


def test_by_accuracy(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"advice": "same", "accuracy": 0.6, "final_prob_initial": 0.85},  # +0.05
            {"advice": "same", "accuracy": 1.0, "final_prob_initial": 0.95},  # +0.15
        ]
    )
    table = confidence_change(trials, ("display", "advice", "accuracy"))
    assert table["mean"].tolist() == pytest.approx([0.05, 0.15])
