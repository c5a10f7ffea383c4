"""A Bayesian agent (choice_support 0, w_same = w_opposite = 1, noise 0) is judged ideal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis import POOLED, oucs, overweighting

Simulate = Callable[..., pd.DataFrame]


@pytest.fixture
def ideal(simulated: Simulate) -> pd.DataFrame:
    return simulated(
        choice_support=0.0,
        w_same=1.0,
        w_opposite=1.0,
        noise=0.0,
        n_items=30,
        displays=("shown", "hidden", "other"),
    )


def test_oucs_is_zero_in_every_cell(ideal: pd.DataFrame) -> None:
    for by in (("display", "advice"), ("display", "advice", "accuracy")):
        table = oucs(ideal, by)
        assert len(table) == (9 if len(by) == 2 else 54)
        np.testing.assert_allclose(table["mean"], 0.0, atol=1e-12)


def test_overweighting_is_one(ideal: pd.DataFrame) -> None:
    table = overweighting(ideal)
    np.testing.assert_allclose(table["ratio_of_sums"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(table["median_ratio"], 1.0, rtol=1e-9)
    assert set(table["display"]) == {"shown", "hidden", "other", POOLED}
