"""The readout-aware update fit: the interval-censored likelihood against values computed by
hand, the grids read from the confidences, the estimator each readout gets, and recovery of a
known regression through rounded and open intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis.engines.binomial_logit_normal import (
    BinomialLikelihood,
    binomial_logit_normal_fit,
)
from mindshift.analysis.engines.interval_tobit import (
    IntervalLikelihood,
    interval_tobit_fit,
    log_interval_probability,
)
from mindshift.analysis.engines.readout_grid import rounding_step, sample_count
from mindshift.analysis.measures.fit import _stated_intervals, at_resolution, estimator_for


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_interval_loglik_of_three_points_by_hand() -> None:
    # One intercept column; beta = 0.5, sigma = 2 (theta = log 2). Rows: a closed interval,
    # one open below, one open above.
    x = np.ones((3, 1))
    low = np.array([-1.0, -math.inf, 2.0])
    high = np.array([1.0, 0.0, math.inf])
    likelihood = IntervalLikelihood(x, low, high)
    by_hand = (
        math.log(_phi((1.0 - 0.5) / 2) - _phi((-1.0 - 0.5) / 2))  # 0.5987 - 0.2266 = 0.3721
        + math.log(_phi((0.0 - 0.5) / 2))  # 0.4013
        + math.log(1.0 - _phi((2.0 - 0.5) / 2))  # 0.2266
    )
    assert likelihood.loglik(np.array([0.5, math.log(2.0)])) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(
        math.log(0.37208) + math.log(0.40129) + math.log(0.22663), abs=1e-4
    )


def test_interval_probability_far_in_the_tails() -> None:
    # Phi(41) - Phi(40) cancels to 0 in floating point; the mirrored form keeps it.
    value = log_interval_probability(np.array([40.0]), np.array([41.0]))[0]
    assert value == pytest.approx(-0.5 * 40**2 - math.log(40 * math.sqrt(2 * math.pi)), abs=0.01)
    assert log_interval_probability(np.array([-math.inf]), np.array([math.inf]))[0] == 0.0


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(50), rng.normal(size=50)])
    centre = np.round(x @ [0.2, 1.0] + rng.normal(size=50))
    low = np.where(centre <= -1, -math.inf, centre - 0.5)
    high = np.where(centre >= 2, math.inf, centre + 0.5)
    likelihood = IntervalLikelihood(x, low, high)
    params = np.array([0.1, 0.8, -0.3])
    _, gradient = likelihood(params)
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-6
        numeric = (likelihood(params + step)[0] - likelihood(params - step)[0]) / 2e-6
        assert gradient[j] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_interval_fit_recovers_a_rounded_regression() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    latent = x @ [0.5, 2.0] + rng.normal(size=n) * 0.7
    # Rounded to integers and read only as "at most -2" / "at least 3" beyond.
    stated = np.clip(np.round(latent), -2, 3)
    low = np.where(stated <= -2, -math.inf, stated - 0.5)
    high = np.where(stated >= 3, math.inf, stated + 0.5)
    result = interval_tobit_fit(x, low, high, clusters=np.arange(n))
    assert result.converged
    assert result.coef == pytest.approx([0.5, 2.0], abs=0.06)
    assert result.sigma == pytest.approx(0.7, abs=0.05)
    assert (result.n_lower, result.n_upper) == (int((stated <= -2).sum()), int((stated >= 3).sum()))
    assert np.all(np.isfinite(result.cov_cluster))


def test_interval_fit_refuses_an_empty_interval() -> None:
    with pytest.raises(ValueError, match="lower < upper"):
        interval_tobit_fit(np.ones((3, 1)), [0.0, 1.0, 2.0], [0.5, 1.0, 3.0])


def test_binomial_fit_recovers_a_sampled_regression() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    belief = 1.0 / (1.0 + np.exp(-(x @ [0.3, 1.5] + rng.normal(size=n) * 0.5)))
    counts = rng.binomial(20, belief)
    result = binomial_logit_normal_fit(x, counts, np.full(n, 20), clusters=np.arange(n))
    assert result.converged
    assert result.coef == pytest.approx([0.3, 1.5], abs=0.06)
    assert result.sigma == pytest.approx(0.5, abs=0.06)
    assert (result.n_lower, result.n_upper) == (int((counts == 0).sum()), int((counts == 20).sum()))


def test_binomial_loglik_of_two_rows_by_hand() -> None:
    # sigma at its floor: the quadrature collapses to the plain binomial at expit(xb).
    likelihood = BinomialLikelihood(np.ones((2, 1)), np.array([3.0, 0.0]), np.array([4.0, 2.0]))
    p = 1.0 / (1.0 + math.exp(-0.5))
    by_hand = math.log(4 * p**3 * (1 - p)) - math.log(4) + 2 * math.log(1 - p)
    value, _ = likelihood(np.array([0.5, math.log(1e-9)]))
    # The binomial coefficient C(4, 3) = 4 is a constant the fit leaves out.
    assert -value == pytest.approx(by_hand, rel=1e-9)


def test_grids_read_from_the_values() -> None:
    assert sample_count([0.0, 0.05, 0.5, 1.0]) == 20
    assert sample_count([0.3, 0.5]) == 10
    assert sample_count([math.pi / 4]) is None
    assert sample_count([math.nan]) is None
    assert rounding_step([0.9, 0.5, 1.0, 0.0]) == 10
    assert rounding_step([0.95, 0.5]) == 5
    assert rounding_step([0.93]) == 1
    assert rounding_step([0.935]) is None


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def _trials(readout: str, initial: list[float], final: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "readout": readout,
            "initial_confidence": initial,
            "final_confidence": final,
            "final_prob_initial": final,
        }
    )


def test_each_readout_gets_its_estimator() -> None:
    logprobs = estimator_for(_trials("logprobs", [0.73, 0.91], [0.62, 0.4]))
    assert (logprobs.name, logprobs.bound) == ("tobit", 0.01)
    sampling = estimator_for(_trials("sampling", [0.85, 1.0], [0.05, 0.6]))
    assert (sampling.name, sampling.bound, sampling.samples) == (
        "binomial-logit-normal",
        1 / 40,
        20,
    )
    assert "N = 20" in sampling.reason
    assert at_resolution(sampling).name == "tobit-resolution"
    with pytest.raises(ValueError, match="not the fit of a sampling readout"):
        at_resolution(logprobs)
    verbal = estimator_for(_trials("verbal", [0.8, 1.0], [0.3, 0.9]))
    assert (verbal.name, verbal.step, verbal.bound) == ("interval-tobit", 0.1, 0.05)
    two_stage = estimator_for(_trials("verbal-2stage", [0.85, 1.0], [0.3, 0.9]))
    assert (two_stage.name, two_stage.step) == ("interval-tobit", 0.05)
    # P(True) read by logprobs is a probability; read by sampling, a frequency.
    assert estimator_for(_trials("ptrue", [math.pi / 4, 0.7123], [0.3333, 0.9])).name == "tobit"
    assert estimator_for(_trials("ptrue", [0.4, 0.8], [0.2, 0.6])).name == "binomial-logit-normal"
    # A table without readouts is a logprobs table.
    assert estimator_for(_trials("x", [0.5], [0.5]).drop(columns="readout")).name == "tobit"


def test_mixed_readouts_are_refused_with_a_note() -> None:
    mixed = pd.concat([_trials("logprobs", [0.7], [0.6]), _trials("verbal", [0.8], [0.9])])
    estimator = estimator_for(mixed)
    assert estimator.name == "none"
    assert "mix readouts (logprobs, verbal)" in estimator.reason


def test_stated_intervals_by_hand() -> None:
    rows = pd.DataFrame(
        {
            "final_confidence": [0.8, 1.0, 0.7, 0.0],
            "changed_mind": [False, False, True, True],
            "n_options": [2, 2, 2, 4],
        }
    )
    low, high = _stated_intervals(rows, 0.1)
    # kept answer, 80 %: q in [0.75, 0.85]; stated 100 %: [0.95, 1] open above;
    # changed with 70 % on the new answer: q = 0.3 in [0.25, 0.35];
    # changed among 4 options with 0 % stated: q = (1 - s) / 3 in [0.95 / 3, 1.05 / 3].
    assert low == pytest.approx([logit(0.75), logit(0.95), logit(0.25), logit(0.95 / 3)])
    assert high[[0, 2, 3]] == pytest.approx([logit(0.85), logit(0.35), logit(1.05 / 3)])
    assert high[1] == math.inf
