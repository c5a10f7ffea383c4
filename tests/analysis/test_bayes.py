"""The ideal observer's posterior, against hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis import advice_sign, bayes_posterior, with_bayes

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def test_worked_example_from_the_paper() -> None:
    # c = 0.8, a = 0.7:
    #   same:     0.8*0.7 / (0.8*0.7 + 0.2*0.3) = 0.56 / 0.62 = 0.903226
    #   opposite: 0.8*0.3 / (0.8*0.3 + 0.2*0.7) = 0.24 / 0.38 = 0.631579
    post = bayes_posterior([0.8, 0.8], [0.7, 0.7], ["same", "opposite"])
    assert post[0] == pytest.approx(0.56 / 0.62, abs=1e-12)
    assert post[1] == pytest.approx(0.24 / 0.38, abs=1e-12)
    assert round(float(post[0]), 3) == 0.903
    assert round(float(post[1]), 3) == 0.632


def test_neutral_advice_leaves_the_prior() -> None:
    # s = 0: post = c, whatever the accuracy (even a missing one).
    post = bayes_posterior([0.8, 0.65, 0.3], [0.9, float("nan"), 1.0], ["neutral"] * 3)
    np.testing.assert_allclose(post, [0.8, 0.65, 0.3])


def test_accuracy_one_is_clipped_to_099() -> None:
    # a = 1.0 reads as 0.99: same -> 0.8*0.99 / (0.8*0.99 + 0.2*0.01) = 0.792/0.794 = 0.997481
    # opposite -> 0.8*0.01 / (0.8*0.01 + 0.2*0.99) = 0.008/0.206 = 0.038835 (not 0 or 1).
    post = bayes_posterior([0.8, 0.8], [1.0, 1.0], ["same", "opposite"])
    assert post[0] == pytest.approx(0.792 / 0.794, abs=1e-12)
    assert post[1] == pytest.approx(0.008 / 0.206, abs=1e-12)


def test_confidence_is_clipped_too() -> None:
    # c = 1.0 reads as 0.99; a = 0.5 carries no evidence: post = 0.99.
    assert float(bayes_posterior(1.0, 0.5, "same")) == pytest.approx(0.99)


def test_advice_sign_and_unknown_advice() -> None:
    signs = advice_sign(["same", "opposite", "neutral", "both"])
    assert signs[:3].tolist() == [1.0, -1.0, 0.0]
    assert math.isnan(signs[3])
    assert math.isnan(float(bayes_posterior(0.8, 0.7, "both")))


def test_with_bayes_is_nan_for_multi_option_and_unknown_confidence(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"advice": "same", "accuracy": 0.7},
            {"advice": "same", "accuracy": 0.7, "n_options": 4},
            {"advice": "same", "accuracy": 0.7, "initial_confidence": float("nan")},
        ]
    )
    post = with_bayes(trials)["bayes_post"].tolist()
    assert post[0] == pytest.approx(0.56 / 0.62)
    assert math.isnan(post[1]) and math.isnan(post[2])
