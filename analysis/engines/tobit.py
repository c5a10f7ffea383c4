"""Censored-normal (Tobit) maximum-likelihood linear regression.

y* = X @ beta + eps, eps ~ Normal(0, sigma); y = y* inside (lower, upper), and only "at or
beyond the bound" is seen outside. Confidences are clipped before their logit, so a final
confidence of 0.999 and one of 0.9999 both read as logit(0.99): treating those as exact values
(OLS) would pull every slope towards zero, while the censored likelihood uses them correctly.

Numerics: sigma = exp(theta) with theta bounded below by log(sigma_floor), so a noiseless
agent (sigma -> 0, likelihood unbounded) ends at the floor instead of breaking the optimiser;
L-BFGS-B with the analytic gradient, started from OLS on the uncensored rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from mindshift.analysis.engines.clustered import sandwich
from mindshift.analysis.engines.logodds import FloatArray

SIGMA_FLOOR = 1e-4
"""Default smallest noise scale: far below any real model's, far above rounding error."""

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class TobitResult:
    """A fitted censored-normal regression."""

    coef: FloatArray
    """Coefficients, one per column of X."""
    se: FloatArray
    """Standard errors from the observed information (trials taken as independent)."""
    cov_cluster: FloatArray
    """Cluster-robust covariance of the coefficients (sandwich; NaN without clusters)."""
    sigma: float
    """Noise standard deviation; equal to the floor when the data are noiseless."""
    loglik: float
    n: int
    n_lower: int
    """Observations at or below the lower bound (left-censored)."""
    n_upper: int
    """Observations at or above the upper bound (right-censored)."""
    converged: bool
    message: str


def _log_mills(z: FloatArray) -> FloatArray:
    """log(phi(z) / Phi(z)), stable far into both tails."""
    return np.asarray(-0.5 * z**2 - _LOG_SQRT_2PI - special.log_ndtr(z), dtype=np.float64)


class _Likelihood:
    """Negative log-likelihood of (beta, theta) and its gradient, for fixed data."""

    def __init__(self, x: FloatArray, y: FloatArray, lower: float, upper: float) -> None:
        self.x = x
        self.y = y
        self.lower = lower
        self.upper = upper
        self.low = y <= lower
        self.high = y >= upper
        self.mid = ~(self.low | self.high)

    def __call__(self, params: FloatArray) -> tuple[float, FloatArray]:
        beta, theta = params[:-1], float(params[-1])
        sigma = math.exp(theta)
        xb = self.x @ beta
        d_xb = np.zeros_like(xb)
        d_theta = 0.0
        loglik = 0.0
        # Exactly observed: log phi(z) - log sigma.
        z = (self.y[self.mid] - xb[self.mid]) / sigma
        loglik += float(np.sum(-0.5 * z**2 - _LOG_SQRT_2PI - theta))
        d_xb[self.mid] = z / sigma
        d_theta += float(np.sum(z**2 - 1.0))
        # Censored: log Phi(z), with z oriented so that larger z is more likely.
        for mask, z_side, sign in (
            (self.low, (self.lower - xb[self.low]) / sigma, -1.0),
            (self.high, (xb[self.high] - self.upper) / sigma, 1.0),
        ):
            if not mask.any():
                continue
            loglik += float(np.sum(special.log_ndtr(z_side)))
            mills = np.exp(_log_mills(z_side))
            d_xb[mask] = sign * mills / sigma
            d_theta -= float(np.sum(mills * z_side))
        gradient = np.append(self.x.T @ d_xb, d_theta)
        return -loglik, -gradient

    def scores(self, params: FloatArray) -> FloatArray:
        """Per-observation gradients of the log-likelihood in (beta, theta): n x (k + 1)."""
        beta, theta = params[:-1], float(params[-1])
        sigma = math.exp(theta)
        xb = self.x @ beta
        d_xb = np.zeros_like(xb)
        d_theta = np.zeros_like(xb)
        z = (self.y[self.mid] - xb[self.mid]) / sigma
        d_xb[self.mid] = z / sigma
        d_theta[self.mid] = z**2 - 1.0
        for mask, z_side, sign in (
            (self.low, (self.lower - xb[self.low]) / sigma, -1.0),
            (self.high, (xb[self.high] - self.upper) / sigma, 1.0),
        ):
            mills = np.exp(_log_mills(z_side))
            d_xb[mask] = sign * mills / sigma
            d_theta[mask] = -mills * z_side
        return np.column_stack([self.x * d_xb[:, None], d_theta])


def _ols_start(x: FloatArray, y: FloatArray, mid: npt.NDArray[np.bool_]) -> FloatArray:
    # Uncensored rows alone give a far better start than all rows (where the clipped values
    # flatten the slopes); fall back to all rows when too few are uncensored.
    enough = mid.sum() > x.shape[1] and np.linalg.matrix_rank(x[mid]) == x.shape[1]
    rows = mid if enough else np.ones_like(mid)
    beta, *_ = np.linalg.lstsq(x[rows], y[rows], rcond=None)
    return np.asarray(beta, dtype=np.float64)


def _hessian(objective: _Likelihood, params: FloatArray) -> FloatArray:
    """Central differences of the analytic gradient (symmetrised)."""
    k = params.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(float(params[j])))
        shift = np.zeros(k)
        shift[j] = step
        hessian[:, j] = (objective(params + shift)[1] - objective(params - shift)[1]) / (2 * step)
    return np.asarray((hessian + hessian.T) / 2.0, dtype=np.float64)


def tobit_fit(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    lower: float = -math.inf,
    upper: float = math.inf,
    sigma_floor: float = SIGMA_FLOOR,
    clusters: npt.NDArray[np.int64] | None = None,
) -> TobitResult:
    """Fit y* = x @ beta + Normal(0, sigma), y censored at `lower` and `upper`.

    `x` must have full column rank and more rows than columns (ValueError otherwise).
    `clusters` (integer codes, one per row) give the cluster-robust covariance.
    """
    design = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    n, k = design.shape
    if n <= k or np.linalg.matrix_rank(design) < k:
        raise ValueError(f"design of shape {design.shape} is not of full column rank")
    objective = _Likelihood(design, target, lower, upper)
    beta0 = _ols_start(design, target, objective.mid)
    resid = target - design @ beta0
    spread = float(np.std(resid[objective.mid])) if objective.mid.any() else 1.0
    theta_floor = math.log(sigma_floor)
    start = np.append(beta0, max(math.log(max(spread, sigma_floor)), theta_floor))
    bounds = [(None, None)] * k + [(theta_floor, None)]
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    params = np.asarray(result.x, dtype=np.float64)
    at_floor = params[-1] <= theta_floor + 1e-9
    hessian = _hessian(objective, params)
    # At the floor sigma is not at a stationary point, so its row of the information matrix
    # means nothing: the coefficients' errors are then taken with sigma held fixed.
    block = hessian[:k, :k] if at_floor else hessian
    try:
        cov = np.linalg.inv(block)
        se = np.sqrt(np.clip(np.diag(cov)[:k], 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(k, np.nan)
    cov_cluster = np.full((k, k), np.nan)
    if clusters is not None:
        scores = objective.scores(params)
        width = k if at_floor else k + 1
        cov_cluster = sandwich(block, scores[:, :width], clusters)[:k, :k]
    return TobitResult(
        coef=params[:k],
        se=np.asarray(se, dtype=np.float64),
        cov_cluster=np.asarray(cov_cluster, dtype=np.float64),
        sigma=math.exp(float(params[-1])),
        loglik=-float(result.fun),
        n=n,
        n_lower=int(objective.low.sum()),
        n_upper=int(objective.high.sum()),
        converged=bool(result.success),
        message=str(result.message),
    )
