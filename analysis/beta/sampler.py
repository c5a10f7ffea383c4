"""The PyMC model of the beta regression and its NUTS sampler.

Imported only through `analysis.beta.models.fit_beta_model`, so that `analysis` imports
without the optional `bayes` extra (PyMC, ArviZ). The model:

    coef_j ~ Normal(prior_mean_j, prior_sd_j)          one per design term
    kappa  ~ LogNormal(log_kappa_mean, log_kappa_sd)
    eta    = design @ coef,  mu = expit(eta)
    q_i    ~ Beta(mu_i * kappa, (1 - mu_i) * kappa), censored at the clip bounds

The likelihood enters as one PyTensor Op (`analysis.beta.likelihood` computes it and its
gradient in one compiled pass) under a `pm.Potential`; PyMC supplies the priors, transforms
(kappa is sampled on the log scale) and NUTS. PyTensor's own incomplete beta function (what
`pm.Censored(pm.Beta)` would use) is about forty times slower per censored trial and gradient:
a 10,800-trial fit took 13 minutes with it, about one minute with this Op.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm  # type: ignore[import-untyped,unused-ignore]
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from scipy import optimize

from mindshift.analysis.beta.likelihood import BetaResponse, loglik_and_grad
from mindshift.analysis.engines.logodds import FloatArray


class CensoredBetaLogLik(Op):  # type: ignore[misc,unused-ignore]  # Op is Any without pytensor
    """(eta, kappa) -> (total log-likelihood, d/d eta, d/d kappa) for fixed data.

    The three outputs come from one call; `grad` re-applies this same Op to the same inputs,
    which PyTensor merges into one node, so each NUTS step evaluates the likelihood once.
    """

    def __init__(self, response: BetaResponse) -> None:
        self.response = response

    def make_node(self, *inputs: Variable[Any, Any]) -> Apply[Any]:
        eta, kappa = inputs
        eta_v = pt.as_tensor_variable(eta, dtype="float64")
        kappa_v = pt.as_tensor_variable(kappa, dtype="float64")
        return Apply(self, [eta_v, kappa_v], [pt.dscalar(), pt.dvector(), pt.dscalar()])

    def perform(
        self, node: Apply[Any], inputs: Sequence[Any], output_storage: list[list[Any]]
    ) -> None:
        total, d_eta, d_kappa = loglik_and_grad(inputs[0], float(inputs[1]), self.response)
        output_storage[0][0] = np.asarray(total)
        output_storage[1][0] = d_eta
        output_storage[2][0] = np.asarray(d_kappa)

    def grad(self, inputs: Sequence[Any], output_grads: Sequence[Any]) -> list[Any]:
        _, d_eta, d_kappa = self.make_node(*inputs).outputs
        weight = output_grads[0]
        return [weight * d_eta, weight * d_kappa]


def build_model(
    design: FloatArray,
    terms: Sequence[str],
    response: BetaResponse,
    *,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    log_kappa_mean: float,
    log_kappa_sd: float,
) -> pm.Model:
    """The PyMC model: `coef` (dims term) and `kappa`, with the censored beta likelihood."""
    loglik = CensoredBetaLogLik(response)
    with pm.Model(coords={"term": list(terms)}) as model:
        coef = pm.Normal("coef", mu=prior_mean, sigma=prior_sd, dims="term")
        kappa = pm.LogNormal("kappa", mu=log_kappa_mean, sigma=log_kappa_sd)
        eta = pt.constant(np.ascontiguousarray(design, dtype=np.float64)) @ coef
        pm.Potential("loglik", loglik.make_node(eta, kappa).outputs[0])
    return model


@dataclass(frozen=True)
class Laplace:
    """The posterior mode and the inverse Hessian there, in the sampler's coordinates
    (coef..., log kappa)."""

    mode: FloatArray
    cov: FloatArray
    converged: bool


def _log_posterior(
    theta: FloatArray,
    design: FloatArray,
    response: BetaResponse,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    log_kappa_mean: float,
    log_kappa_sd: float,
) -> tuple[float, FloatArray]:
    """Log posterior density (up to a constant) of (coef, log kappa) and its gradient.

    The density PyMC samples: a LogNormal kappa on PyMC's log transform, Jacobian included,
    is a Normal density on log kappa.
    """
    coef, log_kappa = theta[:-1], float(theta[-1])
    kappa = math.exp(log_kappa)
    total, d_eta, d_kappa = loglik_and_grad(design @ coef, kappa, response)
    z_coef = (coef - prior_mean) / prior_sd
    z_kappa = (log_kappa - log_kappa_mean) / log_kappa_sd
    value = total - 0.5 * float(z_coef @ z_coef) - 0.5 * z_kappa**2
    grad = np.append(design.T @ d_eta - z_coef / prior_sd, kappa * d_kappa - z_kappa / log_kappa_sd)
    return value, grad


def laplace(
    design: FloatArray,
    response: BetaResponse,
    *,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    log_kappa_mean: float,
    log_kappa_sd: float,
) -> Laplace:
    """Mode (L-BFGS on the analytic gradient) and curvature (central differences of it).

    Used to start the chains and as NUTS's dense metric: with thousands of trials the
    posterior of six parameters is close to Gaussian, so NUTS then needs three or four
    leapfrog steps per draw from the first tuning step, instead of hundreds while a metric
    adapts from the identity (the parameters' scales differ a hundredfold).
    """
    args = (design, response, prior_mean, prior_sd, log_kappa_mean, log_kappa_sd)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _log_posterior(theta, *args)
        if not math.isfinite(value):
            return math.inf, np.zeros_like(theta)
        return -value, -grad

    start = np.append(prior_mean, log_kappa_mean)
    result = optimize.minimize(
        objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000}
    )
    mode = np.asarray(result.x, dtype=np.float64)
    k = mode.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(float(mode[j])))
        shift = np.zeros(k)
        shift[j] = step
        upper = _log_posterior(mode + shift, *args)[1]
        lower = _log_posterior(mode - shift, *args)[1]
        hessian[:, j] = (upper - lower) / (2.0 * step)
    hessian = (hessian + hessian.T) / 2.0
    try:
        cov = np.linalg.inv(-hessian)
        np.linalg.cholesky(cov)  # positive definite, or the fallback below
    except np.linalg.LinAlgError:
        # A flat or saddle-shaped mode (an unidentified term): a diagonal guess still lets
        # NUTS run, and its diagnostics will show the trouble.
        cov = np.diag(np.append(prior_sd, log_kappa_sd) ** 2)
    return Laplace(mode=mode, cov=np.asarray(cov, dtype=np.float64), converged=bool(result.success))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence PyMC's own log lines and warnings while sampling.

    Library code never writes to the terminal (the CLI owns it). Everything those messages
    say (divergences, r_hat, effective sample sizes) is reported in the returned fit instead.
    """
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def sample(
    model: pm.Model,
    start: Laplace,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int,
    target_accept: float,
) -> Any:
    """NUTS draws of `model` as ArviZ InferenceData (posterior and sample_stats groups).

    The metric is the Laplace covariance, fixed (as PyMC's own init="map" does); the step
    size is tuned. Each chain starts at its own draw from the Laplace approximation with
    twice its standard deviations: overdispersed starts, so that r_hat can reveal chains that
    have not forgotten where they began.
    """
    rng = np.random.default_rng(seed)
    starts = rng.multivariate_normal(start.mode, 4.0 * start.cov, size=chains)
    initvals = [{"coef": row[:-1], "kappa": math.exp(float(row[-1]))} for row in starts]
    with _quiet(), model:
        # value_vars are (coef, kappa_log__) in creation order: the metric's order.
        step = pm.NUTS(
            vars=model.value_vars, scaling=start.cov, is_cov=True, target_accept=target_accept
        )
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            step=step,
            initvals=initvals,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
