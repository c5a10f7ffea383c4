"""Change-of-mind rates against a hand-counted table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import com_rates

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


@pytest.fixture
def trials(make_trials: Build) -> pd.DataFrame:
    return make_trials(
        [
            # shown/same: 1 change in 3
            {"display": "shown", "advice": "same", "changed_mind": False},
            {"display": "shown", "advice": "same", "changed_mind": False},
            {"display": "shown", "advice": "same", "changed_mind": True, "final_choice": "B"},
            # shown/opposite: 2 in 2
            {"display": "shown", "advice": "opposite", "changed_mind": True, "final_choice": "B"},
            {"display": "shown", "advice": "opposite", "changed_mind": True, "final_choice": "B"},
            # hidden/opposite: 1 in 2, plus a failed call (no final choice) that must not count
            {"display": "hidden", "advice": "opposite", "changed_mind": True, "final_choice": "B"},
            {"display": "hidden", "advice": "opposite", "changed_mind": False},
            {
                "display": "hidden",
                "advice": "opposite",
                "changed_mind": False,
                "final_choice": None,
            },
        ]
    )


def test_by_display(trials: pd.DataFrame) -> None:
    table = com_rates(trials, ("display",)).set_index("display")
    # shown: 3 changes in 5 = 0.6; hidden: 1 in 2 = 0.5 (the unanswered trial is left out).
    assert table.loc["shown", "mean"] == pytest.approx(0.6)
    assert table.loc["hidden", "mean"] == pytest.approx(0.5)
    assert table.loc["hidden", "n"] == 2
    # SEM of [1, 0]: sd (ddof 1) = 0.70711, / sqrt(2) = 0.5
    assert table.loc["hidden", "sem"] == pytest.approx(0.5)
    # canonical order: shown before hidden
    assert list(table.index) == ["shown", "hidden"]


def test_by_display_and_advice(trials: pd.DataFrame) -> None:
    table = com_rates(trials, ("display", "advice")).set_index(["display", "advice"])
    assert table.loc[("shown", "same"), "mean"] == pytest.approx(1 / 3)
    assert table.loc[("shown", "opposite"), "mean"] == pytest.approx(1.0)
    assert table.loc[("hidden", "opposite"), "mean"] == pytest.approx(0.5)
    assert ("hidden", "same") not in table.index  # absent cells stay absent


def test_by_accuracy(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"accuracy": 0.6, "changed_mind": True},
            {"accuracy": 0.6, "changed_mind": False},
            {"accuracy": 0.9, "changed_mind": True},
        ]
    )
    table = com_rates(trials, ("display", "advice", "accuracy"))
    assert table["accuracy"].tolist() == [0.6, 0.9]
    assert table["mean"].tolist() == pytest.approx([0.5, 1.0])


def test_per_model(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"model": "a", "changed_mind": True},
            {"model": "b", "changed_mind": False},
            {"model": "b", "changed_mind": False},
        ]
    )
    table = com_rates(trials).set_index("model")
    assert table.loc["a", "mean"] == 1.0
    assert table.loc["b", "mean"] == 0.0


def test_item_clustered_standard_error(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"item_id": "a", "changed_mind": True},
            {"item_id": "a", "changed_mind": False},
            {"item_id": "b", "changed_mind": True},
            {"item_id": "b", "changed_mind": True},
        ]
    )
    row = com_rates(trials).iloc[0]
    # mean 0.75; residuals a: +0.25 - 0.75 = -0.5, b: +0.25 + 0.25 = +0.5 (summed per item);
    # CR1: sqrt(G/(G-1) * sum of squares) / n = sqrt(2 * 0.5) / 4 = 0.25
    assert row["mean"] == pytest.approx(0.75)
    assert row["se_item"] == pytest.approx(0.25)
    # plain SEM: sd of [1, 0, 1, 1] = 0.5, / sqrt(4) = 0.25 as well; a case where they differ:
    clustered = make_trials(
        [
            {"item_id": "a", "changed_mind": True},
            {"item_id": "a", "changed_mind": True},
            {"item_id": "b", "changed_mind": False},
            {"item_id": "b", "changed_mind": False},
        ]
    )
    row = com_rates(clustered).iloc[0]
    # residuals per item: a +1.0, b -1.0 -> sqrt(2 * 2) / 4 = 0.5; plain SEM 0.57735/2 = 0.288675
    assert row["se_item"] == pytest.approx(0.5)
    assert row["sem"] == pytest.approx(0.288675, abs=1e-6)
