"""Switching curves: binned R^2 by hand, and recovery of a known sigmoid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from mindshift.analysis import switching_curves, validate_trials
from mindshift.analysis.measures.switching import binned_r2


def test_binned_r2_hand_case() -> None:
    # Two bins: y means 0.2 (n 2) and 0.8 (n 2), fitted means 0.3 and 0.7.
    y = np.array([0.0, 0.4, 0.8, 0.8])
    fitted = np.array([0.3, 0.3, 0.7, 0.7])
    codes = np.array([0, 0, 1, 1])
    # total: 2*(0.3^2) + 2*(0.3^2) = 0.36; residual: 2*0.01 + 2*0.01 = 0.04 -> R^2 = 0.8888...
    assert binned_r2(y, fitted, codes) == pytest.approx(1 - 0.04 / 0.36)


def test_sigmoid_inflection_and_slope_recovered(make_trials) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n = 4000
    c = rng.uniform(0.5, 1.0, n)
    # P(switch) = sigmoid(-20 (c - 0.8)): inflection 0.8, slope at it -20/4 = -5.
    switch = rng.random(n) < special.expit(-20 * (c - 0.8))
    rows = [
        {
            "item_id": f"i{i % 400}",
            "advice": "opposite",
            "accuracy": 0.6,
            "initial_confidence": float(ci),
            "changed_mind": bool(s),
            "final_choice": "B" if s else "A",
        }
        for i, (ci, s) in enumerate(zip(c, switch, strict=True))
    ]
    table = switching_curves(validate_trials(make_trials(rows)))
    row = table.iloc[0]
    assert row["inflection"] == pytest.approx(0.8, abs=0.01)
    assert row["inflection_ci_low"] < 0.8 < row["inflection_ci_high"]
    assert row["sigmoid_slope"] == pytest.approx(-5.0, rel=0.1)
    assert row["normative_inflection"] == pytest.approx(0.6)
    assert row["sigmoid_r2"] > row["linear_r2"] > 0.5
    assert row["sigmoid_r2"] > 0.95


def test_no_variation_gives_no_curve(make_trials) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"advice": "opposite", "initial_confidence": 0.5 + i / 100, "changed_mind": False}
        for i in range(30)
    ]
    row = switching_curves(validate_trials(make_trials(rows))).iloc[0]
    assert bool(row["separated"]) and np.isnan(row["inflection"])
    assert row["switch_rate"] == 0.0 and row["n"] == 30


def test_only_opposite_advice_enters(simulated) -> None:  # type: ignore[no-untyped-def]
    table = switching_curves(validate_trials(simulated(n_items=30)))
    assert set(table["display"]) == {"shown", "hidden"}
    assert (table["n"] == 30).all() and len(table) == 2 * 6
