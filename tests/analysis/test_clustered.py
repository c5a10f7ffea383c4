"""Cluster-robust inference against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindshift.analysis import clustered_mean_se, logistic_fit, sandwich, tobit_fit
from mindshift.analysis.engines.clustered import cluster_codes, interval, p_value


def test_clustered_mean_se_hand_case() -> None:
    # Values by item: a: 1, 3 (dev -1, +1 around mean 2) -> 0; b: 2, 4 -> 2; c: 0 -> -2.
    values = np.array([1.0, 3.0, 2.0, 4.0, 0.0])
    codes = cluster_codes(["a", "a", "b", "b", "c"])
    # mean 2; item sums of deviations 0, 2, -2; G = 3:
    # se = sqrt(3/2 * 8) / 5 = sqrt(12) / 5
    assert clustered_mean_se(values, codes) == pytest.approx(math.sqrt(12) / 5)
    assert math.isnan(clustered_mean_se(values, cluster_codes(["a"] * 5)))


def test_intercept_only_logistic_sandwich_hand_case() -> None:
    # y by item: A (1, 0, 1, 1), B (0, 0), C (1, 0); ybar = 1/2, so b0 = 0 and p = 1/2.
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=float)
    codes = cluster_codes(list("AAAABBCC"))
    fit = logistic_fit(np.ones((8, 1)), y, codes)
    assert fit.coef[0] == pytest.approx(0.0, abs=1e-10)
    # Information n p (1 - p) = 2; item score sums: A 3 - 2 = 1, B 0 - 1 = -1, C 1 - 1 = 0;
    # V = G/(G-1) * sum S_g^2 / I^2 = 3/2 * 2 / 4 = 0.75.
    assert fit.cov_cluster[0, 0] == pytest.approx(0.75)
    assert fit.cov_model[0, 0] == pytest.approx(0.5)
    assert fit.converged and not fit.separated


def test_two_group_logistic_is_the_difference_of_log_odds() -> None:
    # Group 0: 1 of 4 events; group 1: 3 of 4. Coefficient = logit(3/4) - logit(1/4) = ln 9.
    x = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    fit = logistic_fit(x, y, cluster_codes(np.arange(8)))
    assert fit.coef == pytest.approx([math.log(1 / 3), math.log(9)], abs=1e-8)
    # Each trial its own cluster: the sandwich is the HC0 robust variance times G/(G-1).
    # For a saturated binary model HC0 equals the model-based variance: 1/(n p (1-p)) per group.
    model_var = 1 / (4 * 0.25 * 0.75) + 1 / (4 * 0.75 * 0.25)
    assert fit.cov_cluster[1, 1] == pytest.approx(model_var * 8 / 7)
    assert fit.cov_model[1, 1] == pytest.approx(model_var)


def test_sandwich_hand_case() -> None:
    information = np.array([[2.0]])
    scores = np.array([[1.0], [0.0], [-1.0], [1.0]])
    codes = np.array([0, 0, 1, 1])
    # cluster sums 1, 0; meat = 2/1 * 1 = 2; V = 1/2 * 2 * 1/2 = 0.5
    assert sandwich(information, scores, codes)[0, 0] == pytest.approx(0.5)


def test_t_interval_and_p_value() -> None:
    low, high = interval(1.0, 0.5, 9)
    assert (float(low), float(high)) == pytest.approx((1 - 2.262157 * 0.5, 1 + 2.262157 * 0.5))
    assert float(p_value(2.262157, 1.0, 9)) == pytest.approx(0.05, abs=1e-6)
    assert np.isnan(interval(1.0, 0.5, 0)[0])


def test_tobit_clustered_errors_grow_with_shared_item_effects() -> None:
    # An item effect shared by all of an item's trials: clustered errors of the intercept are
    # far larger than the model-based ones that treat trials as independent.
    rng = np.random.default_rng(0)
    items = np.repeat(np.arange(50), 20)
    x = np.column_stack([np.ones(items.size), rng.normal(size=items.size)])
    y = x @ np.array([0.5, 1.0]) + rng.normal(size=50)[items] + 0.1 * rng.normal(size=items.size)
    fit = tobit_fit(x, y, clusters=items)
    clustered = np.sqrt(np.diag(fit.cov_cluster))
    assert clustered[0] > 3 * fit.se[0]
    # The slope varies within items, so clustering barely matters for it.
    assert clustered[1] == pytest.approx(fit.se[1], rel=0.2)


def _cr1_ols(x: np.ndarray, y: np.ndarray, items: np.ndarray) -> np.ndarray:
    """CR1 sandwich of least squares, written out: G/(G-1) (X'X)^-1 sum_g X_g'e_g e_g'X_g (X'X)^-1.

    Without censoring the Tobit likelihood is the normal regression's: its beta is the OLS
    beta, its per-trial beta score x_i e_i / sigma^2, and at the maximum its information is
    block-diagonal in (beta, log sigma) (the cross term is -2 sum x_i e_i / sigma^2 = 0).
    The sigma^2 factors cancel, so the ML sandwich of beta is exactly this (without Stata's
    extra (N-1)/(N-K) factor for least squares).
    """
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    resid = y - x @ beta
    bread = np.linalg.inv(x.T @ x)
    meat = np.zeros((x.shape[1], x.shape[1]))
    groups = np.unique(items)
    for g in groups:
        s = x[items == g].T @ resid[items == g]
        meat += np.outer(s, s)
    n_groups = len(groups)
    return np.asarray(n_groups / (n_groups - 1) * bread @ meat @ bread)


def test_tobit_clustered_covariance_equals_an_independent_cr1_sandwich() -> None:
    # No observation near the (infinite) bounds: the Tobit is the normal regression, and its
    # clustered covariance must equal the least-squares CR1 sandwich computed by hand.
    rng = np.random.default_rng(3)
    items = np.repeat(np.arange(12), 5)
    x = np.column_stack([np.ones(items.size), rng.normal(size=items.size), items % 2])
    y = x @ np.array([0.3, 1.2, -0.5]) + rng.normal(size=12)[items] + rng.normal(size=items.size)
    fit = tobit_fit(x, y, clusters=cluster_codes(items))
    expected = _cr1_ols(x, y, items)
    assert fit.coef == pytest.approx(np.linalg.lstsq(x, y, rcond=None)[0], abs=1e-6)
    assert fit.cov_cluster == pytest.approx(expected, rel=1e-6, abs=1e-12)
