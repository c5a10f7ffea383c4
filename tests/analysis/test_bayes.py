"""The ideal observer's posterior, against hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis import advice_sign, bayes_posterior, expit, logit, with_bayes
from mindshift.analysis.engines.bayes import advice_evidence, bayes_shift, sequence_posterior

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


def test_with_bayes_uses_the_k_option_update(make_trials: Build) -> None:
    trials = make_trials(
        [
            {"advice": "same", "accuracy": 0.7},
            # K = 4, same: 0.8*0.7 / (0.8*0.7 + 0.2*0.1) = 0.56 / 0.58.
            {"advice": "same", "accuracy": 0.7, "n_options": 4},
            {"advice": "same", "accuracy": 0.7, "initial_confidence": float("nan")},
            # K = 4, opposite, p_i = 0.5, p_r = 0.2: 0.5*0.1 / (0.2*0.7 + 0.8*0.1) = 0.05 / 0.22.
            {
                "advice": "opposite",
                "accuracy": 0.7,
                "n_options": 4,
                "initial_confidence": 0.5,
                "initial_prob_advised": 0.2,
            },
            # ... which needs p_r: without it, unknown rather than a two-option number.
            {"advice": "opposite", "accuracy": 0.7, "n_options": 4},
        ]
    )
    post = with_bayes(trials)["bayes_post"].tolist()
    assert post[0] == pytest.approx(0.56 / 0.62)
    assert post[1] == pytest.approx(0.56 / 0.58, abs=1e-12)
    assert math.isnan(post[2])
    assert post[3] == pytest.approx(0.05 / 0.22, abs=1e-12)
    assert math.isnan(post[4])


def test_k_option_update_is_the_posterior_of_the_full_distribution() -> None:
    # p = (0.5, 0.2, 0.2, 0.1), advice of accuracy 0.8 for option r; wrong advisors pick
    # uniformly: L_r = 0.8, L_j = 0.2 / 3. post_0 = p_0 L_0 / sum_j p_j L_j.
    p = np.array([0.5, 0.2, 0.2, 0.1])
    for r, advice in ((0, "same"), (1, "opposite"), (3, "opposite")):
        likelihood = np.full(4, 0.2 / 3)
        likelihood[r] = 0.8
        exact = p[0] * likelihood[0] / float(p @ likelihood)
        post = bayes_posterior(0.5, 0.8, advice, n_options=4, advised_prob=p[r])
        assert float(post) == pytest.approx(exact, abs=1e-12)


def test_two_options_are_bit_identical_to_the_two_option_formula() -> None:
    c = np.array([0.05, 0.3, 0.8, 0.999, 0.62])
    a = np.array([0.5, 0.6, 0.7, 1.0, 0.9])
    for advice in ("same", "opposite", "neutral"):
        kinds = [advice] * c.size
        expected = expit(logit(c) + advice_evidence(a, kinds))
        # Whatever advised probability is recorded, two options never read it.
        got = bayes_posterior(c, a, kinds, n_options=2, advised_prob=np.full(c.size, 0.123))
        assert np.array_equal(got, expected)
        assert np.array_equal(bayes_shift(a, kinds, 2), advice_evidence(a, kinds))


def test_a_sequence_adds_its_log_odds() -> None:
    # Two options: c = 0.8, same@0.7 then opposite@0.9: odds 4 x 7/3 x 1/9 = 28/27.
    advisors = [("same", 0.7, "A", 0.8), ("opposite", 0.9, "B", 0.2)]
    total, post = sequence_posterior(0.8, "A", advisors, 2)
    assert post == pytest.approx(28 / 55, abs=1e-12)
    assert total == pytest.approx(math.log(7 / 3) - math.log(9))
    # K = 4, p = (A 0.5, B 0.2, C 0.2, D 0.1): opposite@0.7 names B, then opposite@0.9 names
    # D. Unnormalised posteriors: A 0.5*0.1*(0.1/3), B 0.2*0.7*(0.1/3), C 0.2*0.1*(0.1/3),
    # D 0.1*0.1*0.9; they sum to 0.016, and A's share is (1/600) / 0.016 = 5/48. C, named by
    # no advisor, needs no probability of its own.
    advisors = [("opposite", 0.7, "B", 0.2), ("opposite", 0.9, "D", 0.1)]
    _, post = sequence_posterior(0.5, "A", advisors, 4)
    assert post == pytest.approx(5 / 48, abs=1e-12)
    # One advisor: the same number as the single-advice baseline.
    single = sequence_posterior(0.5, "A", [("opposite", 0.7, "B", 0.2)], 4)[1]
    assert single == pytest.approx(
        float(bayes_posterior(0.5, 0.7, "opposite", n_options=4, advised_prob=0.2)), abs=1e-12
    )


def test_exact_bayes_at_accuracy_one() -> None:
    # bayes_clip 0: a = 1.0 moves the posterior all the way; clipped, it reads as 0.99:
    # same c = 0.8: 0.8*0.99 / (0.8*0.99 + 0.2*0.01) = 0.792 / 0.794.
    exact = bayes_posterior([0.8, 0.8], [1.0, 1.0], ["same", "opposite"], bayes_clip=0.0)
    assert exact.tolist() == [1.0, 0.0]
    clipped = bayes_posterior([0.8], [1.0], ["same"])
    assert float(clipped[0]) == pytest.approx(0.792 / 0.794)
    # A certain prior against certain contrary advice is undefined: NaN, not a number.
    undefined = bayes_posterior([1.0], [1.0], ["opposite"], bayes_clip=0.0)
    assert np.isnan(undefined[0])
    # Below the clip bounds nothing changes: c = 0.8, a = 0.7 gives 0.903 either way.
    assert float(bayes_posterior(0.8, 0.7, "same", bayes_clip=0.0)) == pytest.approx(
        float(bayes_posterior(0.8, 0.7, "same"))
    )


def test_exact_bayes_with_four_options_and_sequences() -> None:
    # K = 4, c = 0.5, the advised option held 0.2: certain same advice -> 1, opposite -> 0.
    post = bayes_posterior(
        [0.5, 0.5],
        [1.0, 1.0],
        ["same", "opposite"],
        n_options=4,
        advised_prob=0.2,
        bayes_clip=0.0,
    )
    assert post.tolist() == [1.0, 0.0]
    # A certain advisor, then a contrary certain one: no option is left possible.
    _, undefined = sequence_posterior(
        0.5, "A", [("same", 1.0, "A", 0.5), ("opposite", 1.0, "B", 0.2)], 4, 0.0
    )
    assert np.isnan(undefined)
    # A certain advisor, then an uncertain one: the posterior stays 1.
    _, certain = sequence_posterior(
        0.5, "A", [("same", 1.0, "A", 0.5), ("opposite", 0.7, "B", 0.2)], 4, 0.0
    )
    assert certain == 1.0
