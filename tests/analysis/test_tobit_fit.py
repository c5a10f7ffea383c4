"""The update-model fit recovers the simulated agent's parameters, censoring included."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis import CLIP_HIGH, CLIP_LOW, fit_update_model, logit, tobit_fit

Simulate = Callable[..., pd.DataFrame]


def test_recovers_the_agent_within_five_percent(simulated: Simulate) -> None:
    trials = simulated(choice_support=0.8, w_same=1.0, w_opposite=2.5, noise=0.3, n_items=150)
    # The test only bites if many final confidences lie beyond the clip bounds.
    q = trials["final_prob_initial"]
    assert (q > CLIP_HIGH).sum() > 300 and (q < CLIP_LOW).sum() > 300
    fit = fit_update_model(trials)
    assert fit.converged
    assert fit.choice_support == pytest.approx(0.8, rel=0.05)
    assert fit.w_same == pytest.approx(1.0, rel=0.05)
    assert fit.w_opposite == pytest.approx(2.5, rel=0.05)
    assert fit.prior_weight == pytest.approx(1.0, rel=0.05)
    assert fit.noise == pytest.approx(0.3, rel=0.05)
    assert abs(fit.intercept) < 0.05
    assert fit.n == len(trials)
    assert fit.n_censored_high == int((q >= CLIP_HIGH).sum())
    assert all(np.isfinite(list(fit.se.values())))


def test_ols_on_clipped_values_would_not_recover(simulated: Simulate) -> None:
    # Why the fit is a Tobit: least squares on the clipped logits shrinks w_opposite badly.
    trials = simulated(noise=0.3, n_items=150)
    y = logit(trials["final_prob_initial"])
    la = logit(trials["accuracy"])
    x = np.column_stack(
        [
            np.ones(len(trials)),
            logit(trials["initial_confidence"]),
            trials["display"] == "shown",
            la * (trials["advice"] == "same"),
            -la * (trials["advice"] == "opposite"),
        ]
    ).astype(float)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert beta[4] < 0.8 * 2.5


def test_noiseless_ideal_agent_is_recovered_exactly(simulated: Simulate) -> None:
    trials = simulated(choice_support=0.0, w_same=1.0, w_opposite=1.0, noise=0.0, n_items=40)
    fit = fit_update_model(trials)
    assert fit.choice_support == pytest.approx(0.0, abs=1e-6)
    assert fit.w_same == pytest.approx(1.0, abs=1e-6)
    assert fit.w_opposite == pytest.approx(1.0, abs=1e-6)
    assert fit.prior_weight == pytest.approx(1.0, abs=1e-6)
    assert fit.noise < 1e-3  # at the floor, not NaN or a crash


def test_unidentifiable_terms_are_nan(simulated: Simulate) -> None:
    # No same advice: w_same cannot be estimated; only shown trials: the shown flag is the
    # intercept. The rest is still fitted.
    trials = simulated(advice=("opposite", "neutral"), displays=("shown",), n_items=60)
    fit = fit_update_model(trials)
    assert np.isnan(fit.w_same) and np.isnan(fit.choice_support)
    assert fit.w_opposite == pytest.approx(2.5, rel=0.1)


def test_no_usable_trials_gives_nan(simulated: Simulate) -> None:
    trials = simulated(n_items=4).assign(initial_confidence=float("nan"))
    fit = fit_update_model(trials)
    assert fit.n == 0 and np.isnan(fit.w_opposite)


def test_tobit_without_censoring_is_least_squares() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = x @ np.array([0.5, -1.2]) + rng.normal(0.0, 0.4, 200)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    result = tobit_fit(x, y)
    np.testing.assert_allclose(result.coef, beta, atol=1e-6)
    # The MLE of sigma is the residual RMS (divisor n).
    assert result.sigma == pytest.approx(np.sqrt(np.mean((y - x @ beta) ** 2)), rel=1e-5)
    assert result.n_lower == result.n_upper == 0
