"""The change-of-mind regression: a hand case and recovery of the display effect."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import DISPLAY_TERM, com_logistic, display_coefficient, validate_trials

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def test_display_coefficient_hand_case(make_trials: Build) -> None:
    # Neutral advice at one accuracy: only intercept and display are identifiable.
    # Hidden: 1 change of mind in 4; shown: 3 in 4 -> coefficient logit(.75) - logit(.25) = ln 9.
    rows = [
        {"display": display, "changed_mind": changed, "final_choice": "B" if changed else "A"}
        for display, flags in (("hidden", (1, 0, 0, 0)), ("shown", (1, 1, 1, 0)))
        for changed in map(bool, flags)
    ]
    table = com_logistic(validate_trials(make_trials(rows)))
    assert list(table["term"]) == ["intercept", DISPLAY_TERM]
    coef = display_coefficient(table, "m")
    assert coef["estimate"] == pytest.approx(math.log(9), abs=1e-8)
    assert coef["odds_ratio"] == pytest.approx(9.0)
    assert coef["ci_low"] < coef["estimate"] < coef["ci_high"]


def test_recovers_a_negative_display_effect(simulated: Callable[..., pd.DataFrame]) -> None:
    biased = com_logistic(validate_trials(simulated(choice_support=1.5, n_items=80, seed=3)))
    ideal = com_logistic(
        validate_trials(simulated(choice_support=0.0, n_items=80, seed=3, model="ideal"))
    )
    shown = display_coefficient(biased, "sim")
    assert shown["ci_high"] < 0  # seeing its own answer makes switching rarer
    null = display_coefficient(ideal, "ideal")
    assert null["ci_low"] < 0 < null["ci_high"]
    opposite = biased.loc[biased["term"] == "advice: opposite", "estimate"].iloc[0]
    assert opposite > 0
