"""Every measure on K options, against hand-computed cases (docs/paradigm.md §4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import design_matrix, oucs, overweighting, validate_trials, with_bayes

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]

K4_OPPOSITE = {
    "n_options": 4,
    "advice": "opposite",
    "accuracy": 0.7,
    "initial_confidence": 0.5,
    "initial_prob_advised": 0.2,
    "final_prob_initial": 0.3,
}
"""p_i = 0.5, p_r = 0.2, a = 0.7: post = 0.5*0.1 / (0.2*0.7 + 0.8*0.1) = 0.05 / 0.22."""


def test_oucs_on_four_options(make_trials: Build) -> None:
    cells = oucs(validate_trials(make_trials([K4_OPPOSITE])))
    assert float(cells["mean"].iloc[0]) == pytest.approx(0.3 - 0.05 / 0.22, abs=1e-12)


def test_overweighting_on_four_options(make_trials: Build) -> None:
    # Same advice, K = 4, c = 0.5, a = 0.5: post = 0.25 / (0.25 + 0.5 * 0.5/3) = 0.75, a Bayes
    # update of 0.25 (a = 0.5 is evidence with four options); observed 0.8 - 0.5 = 0.3.
    # At a = 1/4 the advice carries no evidence and the trial has no ratio.
    rows = [
        {"n_options": 4, "advice": "same", "accuracy": 0.5, "initial_confidence": 0.5,
         "final_prob_initial": 0.8},
        {"n_options": 4, "advice": "same", "accuracy": 0.25, "initial_confidence": 0.5,
         "final_prob_initial": 0.9},
    ]  # fmt: skip
    table = overweighting(validate_trials(make_trials(rows)))
    hidden = table.loc[(table["display"] == "hidden") & (table["advice"] == "same")].iloc[0]
    assert hidden["n"] == 1
    assert hidden["ratio_of_sums"] == pytest.approx(0.3 / 0.25)


def test_two_option_overweighting_still_drops_accuracy_one_half(make_trials: Build) -> None:
    rows = [{"advice": "same", "accuracy": 0.5}, {"advice": "same", "accuracy": 0.7}]
    table = overweighting(validate_trials(make_trials(rows)))
    assert set(table["n"]) == {1}


def test_the_fit_evidence_is_the_bayes_log_odds_shift(make_trials: Build) -> None:
    trials = validate_trials(
        make_trials(
            [
                {**K4_OPPOSITE, "display": "shown"},
                {"n_options": 4, "advice": "same", "accuracy": 0.7, "display": "hidden"},
                {"advice": "opposite", "accuracy": 0.7},  # two options: -logit(0.7)
                {"display": "answer-wrong", "advice": "same"},  # a control: not in the fit
            ]
        )
    )
    design, _ = design_matrix(trials)
    assert list(design.index) == [0, 1, 2]
    # Opposite, K = 4: log((1 - a)/3) - log(w a + (1 - w)(1 - a)/3), w = 0.2 / 0.5.
    w = 0.4
    expected = math.log(0.1) - math.log(w * 0.7 + (1 - w) * 0.1)
    assert design.at[0, "w_opposite"] == pytest.approx(expected, abs=1e-12)
    # It is logit(post) - logit(c) of the K-option update.
    post = 0.05 / 0.22
    assert expected == pytest.approx(math.log(post / (1 - post)) - 0.0, abs=1e-12)
    # Same, K = 4: logit(a) + log(3).
    assert design.at[1, "w_same"] == pytest.approx(math.log(0.7 / 0.3) + math.log(3))
    assert design.at[2, "w_opposite"] == pytest.approx(-math.log(0.7 / 0.3))
    assert with_bayes(trials)["bayes_shift"].iloc[0] == pytest.approx(expected)
