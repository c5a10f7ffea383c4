"""Overweighting ratios against a hand-computed table.

Bayes updates used below (exact fractions):
  c = 0.8, a = 0.7, same:     post = 0.56/0.62 = 28/31,  update = 28/31 - 4/5 = +16/155
  c = 0.8, a = 0.7, opposite: post = 0.24/0.38 = 12/19,  update = 12/19 - 4/5 = -16/95
  c = 0.6, a = 0.9, opposite: post = 0.06/0.42 = 1/7,    update = 1/7 - 3/5  = -16/35

The paper's rule: the choice-supportive part (shown-neutral minus hidden-neutral mean update)
is subtracted from shown + opposite updates only; shown + same stays as observed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import (
    POOLED,
    choice_support_correction,
    overweighting,
    overweighting_logodds,
    prepare_trials,
    summarise,
    update_table,
)

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
            # shown/same: update +0.2, NOT corrected -> ratio 0.2 / (16/155) = 1.9375
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
    # Shown + same is not corrected (the paper corrects shown + opposite only).
    shown_same = table.loc[(table["display"] == "shown") & (table["advice"] == "same")]
    assert shown_same["corrected_update"].iloc[0] == pytest.approx(0.2)
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


def test_only_shown_opposite_ratios_are_corrected(trials: pd.DataFrame) -> None:
    cells = _cells(trials)
    assert cells.loc[("shown", "same"), "ratio_of_sums"] == pytest.approx(1.9375)
    assert cells.loc[("shown", "opposite"), "ratio_of_sums"] == pytest.approx(1.78125)


def test_pooled_headline(trials: pd.DataFrame) -> None:
    cells = _cells(trials)
    # same: (0.1 + 0.2 + 0.2 uncorrected) / (3 * 16/155) = 0.5 * 155/48 = 1.614583
    assert cells.loc[(POOLED, "same"), "ratio_of_sums"] == pytest.approx(0.5 / (3 * SAME))
    # opposite: (-0.3 - 0.4 - 0.1 - 0.3 corrected) / (3 * -16/95 + -16/35) = 1.142969
    expected = -1.1 / (3 * OPP_07 + OPP_09)
    assert cells.loc[(POOLED, "opposite"), "ratio_of_sums"] == pytest.approx(expected)
    assert cells.loc[(POOLED, "opposite"), "n"] == 4


def test_without_hidden_neutral_shown_opposite_trials_drop_out(trials: pd.DataFrame) -> None:
    keep = ~((trials["display"] == "hidden") & (trials["advice"] == "neutral"))
    cells = _cells(trials.loc[keep])
    # The correction is unknown: shown + opposite has no number; shown + same needs none.
    assert ("shown", "opposite") not in cells.index
    assert cells.loc[("shown", "same"), "ratio_of_sums"] == pytest.approx(1.9375)
    # The pooled opposite ratio rests on hidden trials alone.
    expected = -0.8 / (2 * OPP_07 + OPP_09)
    assert cells.loc[(POOLED, "opposite"), "ratio_of_sums"] == pytest.approx(expected)


def test_summary_versions_paper_and_hidden(trials: pd.DataFrame) -> None:
    entry = summarise(trials)["models"]["m"]
    assert entry["overweighting"]["same"] == pytest.approx(0.5 / (3 * SAME))
    assert entry["overweighting"]["opposite"] == pytest.approx(-1.1 / (3 * OPP_07 + OPP_09))
    # Hidden trials alone (the journal version): never corrected.
    assert entry["overweighting_hidden"]["same"] == pytest.approx(0.3 / (2 * SAME))
    assert entry["overweighting_hidden"]["opposite"] == pytest.approx(-0.8 / (2 * OPP_07 + OPP_09))
    detail = entry["overweighting_detail"]
    # The trial-wise median sits beside the headline: hidden same ratios 0.96875, 1.9375,
    # shown same 1.9375 -> median 1.9375.
    assert detail["pooled"]["same"]["median_ratio"] == pytest.approx(1.9375)
    assert detail["choice_support_correction"] == pytest.approx(0.1)


LN4 = math.log(4.0)


@pytest.fixture
def logodds_trials(make_trials: Build) -> pd.DataFrame:
    """c = 0.8 (logit ln 4) and a = 0.8 (logit ln 4) everywhere: the Bayes log-odds update is
    +ln 4 (same) and -ln 4 (opposite); finals are chosen at logits that are multiples of ln 4:
    16/17 -> 2 ln 4, 64/65 -> 3 ln 4, 0.5 -> 0, 0.2 -> -ln 4."""
    return make_trials(
        [
            # Log-odds correction: shown-neutral +ln 4 minus hidden-neutral 0 = ln 4.
            {"display": "hidden", "advice": "neutral", "accuracy": 0.8, "final_prob_initial": 0.8},
            {
                "display": "shown",
                "advice": "neutral",
                "accuracy": 0.8,
                "final_prob_initial": 16 / 17,
            },
            # hidden/same: +ln 4 over +ln 4 = 1
            {"display": "hidden", "advice": "same", "accuracy": 0.8, "final_prob_initial": 16 / 17},
            # shown/same: +2 ln 4, corrected +ln 4 -> 1
            {"display": "shown", "advice": "same", "accuracy": 0.8, "final_prob_initial": 64 / 65},
            # hidden/opposite: -2 ln 4 over -ln 4 = 2
            {"display": "hidden", "advice": "opposite", "accuracy": 0.8, "final_prob_initial": 0.2},
            # shown/opposite: -ln 4, corrected -2 ln 4 -> 2
            {"display": "shown", "advice": "opposite", "accuracy": 0.8, "final_prob_initial": 0.5},
        ]
    )


def test_logodds_version_corrects_every_shown_trial(logodds_trials: pd.DataFrame) -> None:
    cells = overweighting_logodds(logodds_trials).set_index(["display", "advice"])
    assert choice_support_correction(logodds_trials, "logodds").loc["m"] == pytest.approx(LN4)
    assert cells.loc[("shown", "same"), "ratio_of_sums"] == pytest.approx(1.0)
    assert cells.loc[("shown", "opposite"), "ratio_of_sums"] == pytest.approx(2.0)
    assert cells.loc[("hidden", "same"), "ratio_of_sums"] == pytest.approx(1.0)
    assert cells.loc[(POOLED, "same"), "ratio_of_sums"] == pytest.approx(1.0)
    assert cells.loc[(POOLED, "opposite"), "ratio_of_sums"] == pytest.approx(2.0)
    entry = summarise(logodds_trials)["models"]["m"]
    assert entry["overweighting_logodds"] == pytest.approx({"same": 1.0, "opposite": 2.0})
    # The probability-scale paper version leaves shown + same as observed: (64/65 - 0.8) and
    # (16/17 - 0.8) over 2 * (16/17 - 0.8).
    same = (64 / 65 - 0.8 + 16 / 17 - 0.8) / (2 * (16 / 17 - 0.8))
    assert entry["overweighting"]["same"] == pytest.approx(same)


def test_logodds_update_is_clipped(make_trials: Build) -> None:
    rows = make_trials([{"advice": "same", "accuracy": 0.9, "final_prob_initial": 0.999}])
    # Bayes: post = 0.72 / 0.74 (logit ln 36), update ln 36 - ln 4 = ln 9.
    # Clipped at 0.01: logit(0.999) reads logit(0.99) = ln 99; observed ln 99 - ln 4.
    clipped = overweighting_logodds(rows).set_index("display").loc["hidden", "ratio_of_sums"]
    assert clipped == pytest.approx(math.log(99 / 4) / math.log(9))
    # Exact (bayes_clip 0): logit(0.999) = ln 999.
    exact = prepare_trials(rows, bayes_clip=0.0).trials
    ratio = overweighting_logodds(exact).set_index("display").loc["hidden", "ratio_of_sums"]
    assert ratio == pytest.approx(math.log(999 / 4) / math.log(9))


def test_exact_bayes_leaves_infinite_logodds_out(make_trials: Build) -> None:
    rows = make_trials(
        [
            {"advice": "same", "accuracy": 1.0, "final_prob_initial": 0.95},
            {"advice": "same", "accuracy": 0.9, "final_prob_initial": 0.95},
        ]
    )
    exact = prepare_trials(rows, bayes_clip=0.0).trials
    # a = 1.0: the exact posterior is 1 (probability update 0.2) ...
    assert exact["bayes_post"].iloc[0] == 1.0
    paper = overweighting(exact).set_index("display").loc["hidden"]
    assert paper["n"] == 2
    assert paper["ratio_of_sums"] == pytest.approx(0.3 / (0.2 + 0.72 / 0.74 - 0.8))
    # ... and its log-odds update is infinite: that trial is left out of the log-odds ratio.
    logodds = overweighting_logodds(exact).set_index("display").loc["hidden"]
    assert logodds["n"] == 1


def test_answer_wrong_follows_the_shown_rule_with_its_own_neutral_cell(
    make_trials: Build,
) -> None:
    trials = make_trials(
        [
            {"display": "hidden", "advice": "neutral", "final_prob_initial": 0.8},
            # The answer-wrong control's own neutral update: +0.05 -> correction 0.05.
            {"display": "answer-wrong", "advice": "neutral", "final_prob_initial": 0.85},
            {"display": "answer-wrong", "advice": "same", "final_prob_initial": 0.9},
            {"display": "answer-wrong", "advice": "opposite", "final_prob_initial": 0.6},
            {"display": "hidden", "advice": "same", "final_prob_initial": 0.9},
        ]
    )
    cells = _cells(trials)
    # same: not corrected, 0.1 / (16/155); opposite: -0.2 - 0.05 = -0.25 over -16/95.
    assert cells.loc[("answer-wrong", "same"), "ratio_of_sums"] == pytest.approx(0.1 / SAME)
    assert cells.loc[("answer-wrong", "opposite"), "ratio_of_sums"] == pytest.approx(-0.25 / OPP_07)
    # Controls are never pooled into the headline: it rests on the hidden trial here.
    assert cells.loc[(POOLED, "same"), "n"] == 1
    assert (POOLED, "opposite") not in cells.index


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
    from mindshift.analysis import choice_support_test

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
