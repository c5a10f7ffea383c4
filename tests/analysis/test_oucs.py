"""OUCS against hand-computed cases, and zero for the ideal observer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis import oucs

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def test_hand_case(make_trials: Build) -> None:
    # c = 0.8, a = 0.7 everywhere; Bayes posteriors 0.903226 (same), 0.631579 (opposite),
    # 0.8 (neutral).
    trials = make_trials(
        [
            {"advice": "same", "final_prob_initial": 0.95},  # 0.95 - 0.903226 = +0.046774
            {"advice": "same", "final_prob_initial": 0.99},  # 0.99 - 0.903226 = +0.086774
            {"advice": "opposite", "final_prob_initial": 0.5},  # 0.5 - 0.631579 = -0.131579
            {"advice": "neutral", "display": "shown", "final_prob_initial": 0.9},  # +0.1
        ]
    )
    table = oucs(trials).set_index(["display", "advice"])
    # same: mean of +0.046774 and +0.086774 = +0.066774
    assert table.loc[("hidden", "same"), "mean"] == pytest.approx(0.97 - 0.56 / 0.62)
    assert table.loc[("hidden", "opposite"), "mean"] == pytest.approx(0.5 - 0.24 / 0.38)
    assert table.loc[("shown", "neutral"), "mean"] == pytest.approx(0.1)


def test_positive_means_overconfident(make_trials: Build) -> None:
    # Ignoring strong opposite advice (q stays at c = 0.8) is overconfidence: OUCS > 0.
    trials = make_trials([{"advice": "opposite", "accuracy": 0.9, "final_prob_initial": 0.8}])
    assert oucs(trials)["mean"].iloc[0] > 0.0


def test_paper_layout_rows_are_advice_and_columns_displays(make_trials) -> None:  # type: ignore[no-untyped-def]
    from mindshift.analysis import oucs, oucs_paper_table

    trials = make_trials(
        [
            {"display": "shown", "advice": "neutral", "final_prob_initial": 0.9},
            {"display": "hidden", "advice": "neutral", "final_prob_initial": 0.8},
            {"display": "hidden", "advice": "same", "final_prob_initial": 0.95},
        ]
    )
    table = oucs_paper_table(oucs(trials))
    assert list(table.columns) == ["hidden", "shown"]
    assert list(table.index) == [("m", "same"), ("m", "neutral")]
    assert table.loc[("m", "neutral"), "shown"] == pytest.approx(0.1)
    # same at a = 0.7 from c = 0.8: posterior 28/31; OUCS = 0.95 - 28/31
    assert table.loc[("m", "same"), "hidden"] == pytest.approx(0.95 - 28 / 31)
    assert np.isnan(table.loc[("m", "same"), "shown"])
