"""Binomial logit-normal regression: counts k of N whose log-odds are normal around x @ beta.

eta = x @ beta + sigma * z, z ~ Normal(0, 1); k ~ Binomial(N, expit(eta)). The likelihood of
a row integrates z out by Gauss-Hermite quadrature (NODES nodes, probabilists' weights).

Why: a sampling readout reports the frequency k / N of an option among N answers drawn from
the model's belief q. Its log-odds are not q's plus normal noise (a frequency of 0 or 1 has
none), so a Tobit on logit(k / N) is only approximately right; this is the readout's own
likelihood, with sigma the spread of the belief's log-odds around the regression (the
simulated agent's `noise`) and the sampling noise accounted for by the binomial.

Numerics: sigma = exp(theta) with theta bounded below by log(sigma_floor); L-BFGS-B with the
analytic gradient; errors from central differences of the gradient, clustered by the
sandwich as in `analysis.engines.tobit`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from mindshift.analysis.engines.clustered import sandwich
from mindshift.analysis.engines.logodds import FloatArray
from mindshift.analysis.engines.tobit import SIGMA_FLOOR, TobitResult

NODES: Final = 40
_X, _W = np.polynomial.hermite_e.hermegauss(NODES)
_LOG_W: Final = np.log(_W / _W.sum())


class BinomialLikelihood:
    """Negative log-likelihood of (beta, theta), its gradient and per-row scores."""

    def __init__(self, x: FloatArray, successes: FloatArray, trials: FloatArray) -> None:
        self.x = x
        self.k = successes
        self.n = trials

    def _parts(self, params: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        beta, theta = params[:-1], float(params[-1])
        sigma = math.exp(theta)
        eta = (self.x @ beta)[:, None] + sigma * _X[None, :]
        k, n = self.k[:, None], self.n[:, None]
        log_terms = _LOG_W[None, :] + k * special.log_expit(eta) + (n - k) * special.log_expit(-eta)
        log_row = special.logsumexp(log_terms, axis=1)
        posterior = np.exp(log_terms - log_row[:, None])
        residual = k - n * special.expit(eta)
        d_xb = np.sum(posterior * residual, axis=1)
        d_theta = np.sum(posterior * residual * sigma * _X[None, :], axis=1)
        return np.asarray(log_row), np.asarray(d_xb), np.asarray(d_theta)

    def __call__(self, params: FloatArray) -> tuple[float, FloatArray]:
        log_row, d_xb, d_theta = self._parts(params)
        return -float(np.sum(log_row)), -np.append(self.x.T @ d_xb, np.sum(d_theta))

    def scores(self, params: FloatArray) -> FloatArray:
        """Per-row gradients of the log-likelihood in (beta, theta): n x (k + 1)."""
        _, d_xb, d_theta = self._parts(params)
        return np.column_stack([self.x * d_xb[:, None], d_theta])


def binomial_logit_normal_fit(
    x: npt.ArrayLike,
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    *,
    sigma_floor: float = SIGMA_FLOOR,
    clusters: npt.NDArray[np.int64] | None = None,
) -> TobitResult:
    """Fit the model to counts `successes` of `trials` per row (the module doc).

    `x` must have full column rank and more rows than columns (ValueError otherwise).
    The result's n_lower / n_upper count the rows with k = 0 and k = N.
    """
    design = np.asarray(x, dtype=np.float64)
    k = np.asarray(successes, dtype=np.float64)
    n_draws = np.asarray(trials, dtype=np.float64)
    n, width = design.shape
    if n <= width or np.linalg.matrix_rank(design) < width:
        raise ValueError(f"design of shape {design.shape} is not of full column rank")
    if np.any((k < 0) | (k > n_draws)):
        raise ValueError("every count must lie between 0 and its number of draws")
    objective = BinomialLikelihood(design, k, n_draws)
    # Start from OLS on the empirical log-odds (half a count added at both ends).
    empirical = np.log((k + 0.5) / (n_draws - k + 0.5))
    beta0, *_ = np.linalg.lstsq(design, empirical, rcond=None)
    theta_floor = math.log(sigma_floor)
    start = np.append(beta0, max(math.log(0.5), theta_floor))
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(None, None)] * width + [(theta_floor, None)],
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-8},
    )
    params = np.asarray(result.x, dtype=np.float64)
    at_floor = params[-1] <= theta_floor + 1e-9
    size = params.size
    hessian = np.empty((size, size))
    for j in range(size):
        step = 1e-5 * max(1.0, abs(float(params[j])))
        shift = np.zeros(size)
        shift[j] = step
        hessian[:, j] = (objective(params + shift)[1] - objective(params - shift)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2.0
    block = hessian[:width, :width] if at_floor else hessian
    try:
        se = np.sqrt(np.clip(np.diag(np.linalg.inv(block))[:width], 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(width, np.nan)
    cov_cluster = np.full((width, width), np.nan)
    if clusters is not None:
        kept = width if at_floor else width + 1
        cov_cluster = sandwich(block, objective.scores(params)[:, :kept], clusters)[:width, :width]
    return TobitResult(
        coef=params[:width],
        se=np.asarray(se, dtype=np.float64),
        cov_cluster=np.asarray(cov_cluster, dtype=np.float64),
        sigma=math.exp(float(params[-1])),
        loglik=-float(result.fun),
        n=n,
        n_lower=int(np.sum(k == 0)),
        n_upper=int(np.sum(k == n_draws)),
        converged=bool(result.success),
        message=str(result.message),
    )
