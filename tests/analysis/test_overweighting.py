"""Overweighting ratios against a hand-computed table.

Bayes updates used below (exact fractions):
  c = 0.8, a = 0.7, same:     post = 0.56/0.62 = 28/31,  update = 28/31 - 4/5 = +16/155
  c = 0.8, a = 0.7, opposite: post = 0.24/0.38 = 12/19,  update = 12/19 - 4/5 = -16/95
  c = 0.6, a = 0.9, opposite: post = 0.06/0.42 = 1/7,    update = 1/7 - 3/5  = -16/35
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from analysis import POOLED, choice_support_correction, overweighting, update_table

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]

SAME = 16 / 155
OPP_07 = -16 / 95
OPP_09 = -16 / 35


@pytest.fixture
def trials(make_trials: Build) -> pd.DataFrame:
    return make_trials(
        [
            # Neutral cells give the choice-support correction: shown +0.1, hidden 0 -> 0.1.
            {"display": "hidden", "advice": "neutral", "final_prob_initial": 0.8},
            {"display": "shown", "advice": "neutral", "final_prob_initial": 0.9},
            # hidden/same: updates +0.1, +0.2 -> ratios 0.96875, 1.9375
            {"advice": "same", "final_prob_initial": 0.9},
            {"advice": "same", "final_prob_initial": 1.0},
            # hidden/same at a = 0.5: Bayes update 0, excluded
            {"advice": "same", "accuracy": 0.5, "final_prob_initial": 0.95},
            # hidden/opposite: updates -0.3, -0.4, -0.1
            #   ratios -0.3/(-16/95) = 1.78125, -0.4/(-16/35) = 0.875, -0.1/(-16/95) = 0.59375
            {"advice": "opposite", "final_prob_initial": 0.5},
            {
                "advice": "opposite",
                "accuracy": 0.9,
                "initial_confidence": 0.6,
                "final_prob_initial": 0.2,
            },
            {"advice": "opposite", "final_prob_initial": 0.7},
            # shown/same: update +0.2, corrected +0.1 -> ratio 0.96875
            {"display": "shown", "advice": "same", "final_prob_initial": 1.0},
            # shown/opposite: update -0.2, corrected -0.3 -> ratio 1.78125
            {"display": "shown", "advice": "opposite", "final_prob_initial": 0.6},
        ]
    )


def _cells(trials: pd.DataFrame) -> pd.DataFrame:
    return overweighting(trials).set_index(["display", "advice"])


def _cell(trials: pd.DataFrame, display: str, advice: str) -> dict[str, float]:
    row = _cells(trials).loc[[(display, advice)]].drop(columns="model")
    return {str(name): float(value) for name, value in row.iloc[0].items()}


def test_choice_support_correction(trials: pd.DataFrame) -> None:
    # mean shown-neutral update (+0.1) minus mean hidden-neutral update (0.0)
    assert choice_support_correction(trials).loc["m"] == pytest.approx(0.1)
    table = update_table(trials)
    shown_opposite = table.loc[(table["display"] == "shown") & (table["advice"] == "opposite")]
    assert shown_opposite["observed_update"].iloc[0] == pytest.approx(-0.2)
    assert shown_opposite["corrected_update"].iloc[0] == pytest.approx(-0.3)
    # Neutral and hidden trials are not corrected.
    untouched = table.loc[table["display"] == "hidden"]
    assert (untouched["corrected_update"] == untouched["observed_update"]).all()


def test_mean_median_and_ratio_of_sums(trials: pd.DataFrame) -> None:
    cell = _cell(trials, "hidden", "opposite")
    # mean of (1.78125, 0.875, 0.59375) = 3.25/3 = 1.083333; median = 0.875
    assert cell["mean_ratio"] == pytest.approx(3.25 / 3)
    assert cell["median_ratio"] == pytest.approx(0.875)
    # sum of updates / sum of Bayes updates = -0.8 / -(32/95 + 16/35) = 1.007576
    assert cell["ratio_of_sums"] == pytest.approx(0.8 / (32 / 95 + 16 / 35))
    assert cell["n"] == 3


def test_accuracy_half_is_excluded(trials: pd.DataFrame) -> None:
    cell = _cell(trials, "hidden", "same")
    assert cell["n"] == 2  # the a = 0.5 trial is not in
    # (0.1 + 0.2) / (2 * 16/155) = 1.453125; ratios 0.96875 and 1.9375
    assert cell["ratio_of_sums"] == pytest.approx(0.3 / (2 * SAME))
    assert cell["mean_ratio"] == pytest.approx((0.96875 + 1.9375) / 2)


def test_shown_ratios_use_corrected_updates(trials: pd.DataFrame) -> None:
    cells = _cells(trials)
    assert cells.loc[("shown", "same"), "ratio_of_sums"] == pytest.approx(0.96875)
    assert cells.loc[("shown", "opposite"), "ratio_of_sums"] == pytest.approx(1.78125)


def test_pooled_headline(trials: pd.DataFrame) -> None:
    cells = _cells(trials)
    # same: (0.1 + 0.2 + 0.1 corrected) / (3 * 16/155) = 0.4 * 155/48 = 1.291667
    assert cells.loc[(POOLED, "same"), "ratio_of_sums"] == pytest.approx(0.4 / (3 * SAME))
    # opposite: (-0.3 - 0.4 - 0.1 - 0.3 corrected) / (3 * -16/95 + -16/35) = 1.142969
    expected = -1.1 / (3 * OPP_07 + OPP_09)
    assert cells.loc[(POOLED, "opposite"), "ratio_of_sums"] == pytest.approx(expected)
    assert cells.loc[(POOLED, "opposite"), "n"] == 4


def test_without_hidden_neutral_shown_trials_drop_out(trials: pd.DataFrame) -> None:
    keep = ~((trials["display"] == "hidden") & (trials["advice"] == "neutral"))
    cells = _cells(trials.loc[keep])
    assert ("shown", "same") not in cells.index
    # The pooled ratio rests on hidden trials alone: 0.3 / (2 * 16/155)
    assert cells.loc[(POOLED, "same"), "ratio_of_sums"] == pytest.approx(0.3 / (2 * SAME))


def test_other_display_is_uncorrected_and_not_pooled(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"display": "shown", "advice": "neutral", "final_prob_initial": 0.9},
            {"display": "hidden", "advice": "neutral", "final_prob_initial": 0.8},
            {"display": "other", "advice": "same", "final_prob_initial": 0.9},
        ]
    )
    cells = _cells(trials)
    assert cells.loc[("other", "same"), "ratio_of_sums"] == pytest.approx(0.1 / SAME)
    assert (POOLED, "same") not in cells.index


def test_choice_support_test_hand_case(make_trials: Build) -> None:
    from analysis import choice_support_test

    # Neutral updates by item: a: shown +0.1, hidden 0.0; b: shown +0.3, hidden +0.1.
    trials = make_trials(
        [
            {"item_id": "a", "display": "shown", "final_prob_initial": 0.9},
            {"item_id": "a", "display": "hidden", "final_prob_initial": 0.8},
            {
                "item_id": "b",
                "display": "shown",
                "initial_confidence": 0.6,
                "final_prob_initial": 0.9,
            },
            {
                "item_id": "b",
                "display": "hidden",
                "initial_confidence": 0.6,
                "final_prob_initial": 0.7,
            },
        ]
    )
    row = choice_support_test(trials).iloc[0]
    # estimate: mean shown 0.2 - mean hidden 0.05 = 0.15
    assert row["estimate"] == pytest.approx(0.15)
    # influences: shown (u - 0.2)/2 -> a -0.05, b +0.05; hidden -(u - 0.05)/2 -> a +0.025,
    # b -0.025; item sums a -0.025, b +0.025; var = 2/1 * 2 * 0.025^2 = 0.0025; se = 0.05.
    assert row["se_item"] == pytest.approx(0.05)
    assert row["n_items"] == 2
