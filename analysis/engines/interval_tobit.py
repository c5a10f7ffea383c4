"""Interval-censored normal (Tobit) maximum-likelihood linear regression.

y* = X @ beta + eps, eps ~ Normal(0, sigma); each y* is seen only as an interval [L, U]
(L = -inf: censored below U; U = +inf: censored above L). The log-likelihood of a row is
log(Phi((U - xb) / sigma) - Phi((L - xb) / sigma)).

Why: a confidence stated on a grid of step r (a verbal readout rounded to 10 points) only
says that the true value lies within r / 2 of the stated one. Reading the stated value as
exact (the plain Tobit) flattens the slopes; reading 100 % as "beyond 0.99" steepens them.
The interval likelihood uses what the statement says and no more.

Numerics as `analysis.engines.tobit`: sigma = exp(theta), theta bounded below by
log(sigma_floor); L-BFGS-B with the analytic gradient; the difference of normal CDFs taken
in the tail where it does not cancel.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from mindshift.analysis.engines.clustered import sandwich
from mindshift.analysis.engines.logodds import FloatArray
from mindshift.analysis.engines.tobit import SIGMA_FLOOR, TobitResult

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_pdf(z: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(-0.5 * z**2 - _LOG_SQRT_2PI, dtype=np.float64)


def log_interval_probability(a: FloatArray, b: FloatArray) -> FloatArray:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails (a = -inf, b = +inf allowed)."""
    # Mirror rows lying in the upper tail so that both ends are on the side where Phi is small.
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = special.log_ndtr(hi)
    log_lo = special.log_ndtr(lo)
    with np.errstate(divide="ignore"):
        return np.asarray(log_hi + np.log1p(-np.exp(log_lo - log_hi)), dtype=np.float64)


class IntervalLikelihood:
    """Negative log-likelihood of (beta, theta), its gradient and per-row scores."""

    def __init__(self, x: FloatArray, lower: FloatArray, upper: FloatArray) -> None:
        if np.any(~(lower < upper)):
            raise ValueError("every interval needs lower < upper")
        self.x = x
        self.lower = lower
        self.upper = upper

    def _parts(self, params: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        beta, theta = params[:-1], float(params[-1])
        sigma = math.exp(theta)
        xb = self.x @ beta
        a = (self.lower - xb) / sigma
        b = (self.upper - xb) / sigma
        log_p = log_interval_probability(a, b)
        # phi(z) / P and z * phi(z) / P, zero at an infinite end.
        ratio_a = np.where(np.isfinite(a), np.exp(_log_pdf(a) - log_p), 0.0)
        ratio_b = np.where(np.isfinite(b), np.exp(_log_pdf(b) - log_p), 0.0)
        d_xb = -(ratio_b - ratio_a) / sigma
        finite_a = np.where(np.isfinite(a), a, 0.0)
        finite_b = np.where(np.isfinite(b), b, 0.0)
        d_theta = -(finite_b * ratio_b - finite_a * ratio_a)
        return log_p, d_xb, d_theta

    def loglik(self, params: FloatArray) -> float:
        return float(np.sum(self._parts(params)[0]))

    def __call__(self, params: FloatArray) -> tuple[float, FloatArray]:
        log_p, d_xb, d_theta = self._parts(params)
        gradient = np.append(self.x.T @ d_xb, np.sum(d_theta))
        return -float(np.sum(log_p)), -gradient

    def scores(self, params: FloatArray) -> FloatArray:
        """Per-row gradients of the log-likelihood in (beta, theta): n x (k + 1)."""
        _, d_xb, d_theta = self._parts(params)
        return np.column_stack([self.x * d_xb[:, None], d_theta])


def _hessian(objective: IntervalLikelihood, params: FloatArray) -> FloatArray:
    k = params.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(float(params[j])))
        shift = np.zeros(k)
        shift[j] = step
        hessian[:, j] = (objective(params + shift)[1] - objective(params - shift)[1]) / (2 * step)
    return np.asarray((hessian + hessian.T) / 2.0, dtype=np.float64)


def interval_tobit_fit(
    x: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    *,
    sigma_floor: float = SIGMA_FLOOR,
    clusters: npt.NDArray[np.int64] | None = None,
) -> TobitResult:
    """Fit y* = x @ beta + Normal(0, sigma) to intervals [lower, upper] holding each y*.

    `x` must have full column rank and more rows than columns (ValueError otherwise);
    `clusters` (integer codes, one per row) give the cluster-robust covariance.
    `n_lower` / `n_upper` count the rows open below / above.
    """
    design = np.asarray(x, dtype=np.float64)
    low = np.asarray(lower, dtype=np.float64)
    high = np.asarray(upper, dtype=np.float64)
    n, k = design.shape
    if n <= k or np.linalg.matrix_rank(design) < k:
        raise ValueError(f"design of shape {design.shape} is not of full column rank")
    objective = IntervalLikelihood(design, low, high)
    # Start from OLS on the midpoints of the closed intervals (an open one at its finite end).
    mid = np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2.0, 0.0)
    mid = np.where(np.isfinite(low) & ~np.isfinite(high), low, mid)
    mid = np.where(~np.isfinite(low) & np.isfinite(high), high, mid)
    beta0, *_ = np.linalg.lstsq(design, mid, rcond=None)
    spread = float(np.std(mid - design @ beta0)) or 1.0
    theta_floor = math.log(sigma_floor)
    start = np.append(beta0, max(math.log(max(spread, sigma_floor)), theta_floor))
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(None, None)] * k + [(theta_floor, None)],
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    params = np.asarray(result.x, dtype=np.float64)
    at_floor = params[-1] <= theta_floor + 1e-9
    hessian = _hessian(objective, params)
    block = hessian[:k, :k] if at_floor else hessian
    try:
        cov = np.linalg.inv(block)
        se = np.sqrt(np.clip(np.diag(cov)[:k], 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(k, np.nan)
    cov_cluster = np.full((k, k), np.nan)
    if clusters is not None:
        width = k if at_floor else k + 1
        cov_cluster = sandwich(block, objective.scores(params)[:, :width], clusters)[:k, :k]
    return TobitResult(
        coef=params[:k],
        se=np.asarray(se, dtype=np.float64),
        cov_cluster=np.asarray(cov_cluster, dtype=np.float64),
        sigma=math.exp(float(params[-1])),
        loglik=-float(result.fun),
        n=n,
        n_lower=int(np.sum(~np.isfinite(low))),
        n_upper=int(np.sum(~np.isfinite(high))),
        converged=bool(result.success),
        message=str(result.message),
    )
