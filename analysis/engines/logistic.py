"""Logistic regression by Newton's method, with item-clustered (sandwich) standard errors.

Used for the change-of-mind regression (`analysis.measures.com_regression`) and the switching curves
(`analysis.measures.switching`). Newton's method with step halving converges in a handful of
iterations on a few columns, even for a million rows; perfect or quasi-perfect separation
(a cell where nobody ever changes their mind) makes a coefficient drift to infinity, which is
reported as `separated` instead of as a huge number with a tiny error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from mindshift.analysis.engines.clustered import n_clusters, sandwich
from mindshift.analysis.engines.logodds import FloatArray

SEPARATION_BOUND: Final = 30.0
"""|linear predictor| beyond which a fitted probability is within 1e-13 of 0 or 1: no finite
data support that, so a fit reaching it is (quasi-)separated and its estimates not finite."""


@dataclass(frozen=True)
class LogisticResult:
    """A fitted logistic regression."""

    coef: FloatArray
    cov_cluster: FloatArray
    """Cluster-robust covariance (NaN without clusters or with fewer than 2)."""
    cov_model: FloatArray
    """Model-based covariance, the inverse information (trials taken as independent)."""
    loglik: float
    n: int
    n_clusters: int
    converged: bool
    separated: bool
    """Some fitted probability is numerically 0 or 1: the data (nearly) separate."""

    @property
    def se_cluster(self) -> FloatArray:
        return np.asarray(np.sqrt(np.clip(np.diag(self.cov_cluster), 0.0, None)))


def _loglik(eta: FloatArray, y: FloatArray) -> float:
    # log sigmoid(eta) for y = 1, log sigmoid(-eta) for y = 0, stably.
    return float(-np.sum(np.logaddexp(0.0, np.where(y > 0.5, -eta, eta))))


def logistic_fit(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    codes: npt.NDArray[np.int64] | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LogisticResult:
    """Maximum-likelihood logistic regression of 0/1 `y` on `x` (n x k, full column rank).

    `codes` are integer cluster codes (see `analysis.engines.clustered.cluster_codes`); without them
    the clustered covariance is NaN.
    """
    design = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    n, k = design.shape
    beta = np.zeros(k)
    eta = design @ beta
    loglik = _loglik(eta, target)
    converged = False
    for _ in range(max_iter):
        p = special.expit(eta)
        weight = p * (1.0 - p)
        gradient = design.T @ (target - p)
        information = (design * weight[:, None]).T @ design
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            break
        # Step halving keeps every iteration an ascent step (Newton can overshoot).
        for _ in range(30):
            candidate = beta + step
            eta_new = design @ candidate
            new_loglik = _loglik(eta_new, target)
            if new_loglik >= loglik - 1e-12:
                break
            step /= 2.0
        beta, eta = candidate, eta_new
        gain, loglik = new_loglik - loglik, new_loglik
        if np.max(np.abs(step)) < tol or abs(gain) < tol * max(1.0, abs(loglik)):
            converged = True
            break
    p = special.expit(eta)
    weight = p * (1.0 - p)
    information = (design * weight[:, None]).T @ design
    try:
        cov_model = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        cov_model = np.full((k, k), np.nan)
    if codes is None:
        cov_cluster = np.full((k, k), np.nan)
        groups = 0
    else:
        scores = design * (target - p)[:, None]
        cov_cluster = sandwich(information, scores, codes)
        groups = n_clusters(codes)
    return LogisticResult(
        coef=np.asarray(beta, dtype=np.float64),
        cov_cluster=cov_cluster,
        cov_model=np.asarray(cov_model, dtype=np.float64),
        loglik=loglik,
        n=n,
        n_clusters=groups,
        converged=converged,
        separated=bool(np.max(np.abs(eta), initial=0.0) > SEPARATION_BOUND),
    )
