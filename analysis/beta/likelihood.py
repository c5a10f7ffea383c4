"""The censored beta likelihood of the beta regression and its gradient, compiled with numba.

The response is q, the final probability of the initially chosen option, clipped to
[L, U] = [CLIP_LOW, CLIP_HIGH] like every probability of the analysis (`analysis.engines.logodds`).
With mean mu = expit(eta) and precision kappa, Y ~ Beta(a, b), a = mu * kappa,
b = (1 - mu) * kappa, and each trial contributes
- L < q < U: the log density of Beta(a, b) at q;
- q <= L (censored low): log P(Y <= L) = log I_L(a, b);
- q >= U (censored high): log P(Y >= U) = log I_{1-U}(b, a),
with I_x(p, q) the regularised incomplete beta function.

Why censoring: a final confidence of 0.999 and one of 0.99999 both read as 0.99 once clipped.
Treating 0.99 as an exact value pulls every advice weight towards zero (the reason
`analysis.measures.fit` is a Tobit regression); the censored likelihood takes the clipped trials for
what they are, "at or beyond the bound".

Why hand-written and compiled: PyTensor differentiates I_x(p, q) in its shape parameters
through a generic series loop costing about 10 microseconds per element (a 10,800-trial fit
took 13 minutes), and even its beta density costs about 0.2 microseconds per trial and
gradient. Here I_x is the hypergeometric series (DLMF 8.17.8)
    I_x(p, q) = x^p (1 - x)^q / (p B(p, q)) * sum_n (p + q)_n / (p + 1)_n x^n,
whose terms are all positive (no cancellation) and which, at x = 0.01, converges in about
kappa * x + 30 terms; its derivatives in p and q come from the same loop. The loops are
numba-compiled (numba is a dependency of PyTensor, so it is present wherever PyMC is).
The sampler (`analysis.beta.sampler`) and the scores (`analysis.beta.comparison`) both call
this module, so the likelihood that is sampled is exactly the one that is scored.

Limits: a series that has not converged after _SERIES_MAX_TERMS terms (precision kappa above
about 10^6, an essentially noiseless agent) gives -inf, which the sampler treats as a rejected
step: the posterior is then, in effect, truncated there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import numpy.typing as npt

from mindshift.analysis.engines.logodds import CLIP_HIGH, CLIP_LOW, FloatArray, clip

IntArray = npt.NDArray[np.int8]

LOW: Final = -1
"""Censoring code of a trial at or below the lower clip bound."""
OBSERVED: Final = 0
"""Censoring code of a trial strictly inside the clip bounds."""
HIGH: Final = 1
"""Censoring code of a trial at or above the upper clip bound."""

_SERIES_EPS: Final = 1e-15
"""Stop the series when a bound on its remaining tail is below this fraction of the sum."""
_SERIES_MAX_TERMS: Final = 20_000
_RESCALE_AT: Final = 1e250
"""Partial sums above this are rescaled (the log of the scale kept apart), so never overflow."""
_DIGAMMA_SHIFT: Final = 10.0
"""digamma uses its asymptotic series at or above this argument (error below 1e-14)."""


@dataclass(frozen=True)
class BetaResponse:
    """The beta regression's response: clipped values and which of them are censored."""

    y: FloatArray
    """clip(q), in [CLIP_LOW, CLIP_HIGH]."""
    censoring: IntArray
    """LOW, OBSERVED or HIGH for each trial."""
    log_y: FloatArray = field(init=False, repr=False)
    log_1my: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Precomputed once: the likelihood is evaluated thousands of times on the same data.
        object.__setattr__(self, "log_y", np.log(self.y))
        object.__setattr__(self, "log_1my", np.log1p(-self.y))

    def __len__(self) -> int:
        return int(self.y.size)

    @property
    def n_low(self) -> int:
        """Trials censored at the lower bound."""
        return int(np.count_nonzero(self.censoring == LOW))

    @property
    def n_high(self) -> int:
        """Trials censored at the upper bound."""
        return int(np.count_nonzero(self.censoring == HIGH))


def beta_response(q: npt.ArrayLike) -> BetaResponse:
    """Clip `q` (all finite) and mark the trials at or beyond a clip bound as censored."""
    raw = np.asarray(q, dtype=np.float64)
    if not np.isfinite(raw).all():
        raise ValueError("the beta regression's response must be finite (drop unknown trials)")
    censoring = np.where(raw <= CLIP_LOW, LOW, np.where(raw >= CLIP_HIGH, HIGH, OBSERVED))
    return BetaResponse(np.ascontiguousarray(clip(raw)), censoring.astype(np.int8))


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to _DIGAMMA_SHIFT, then the asymptotic series."""
    result = 0.0
    while x < _DIGAMMA_SHIFT:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    tail = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 - f / 132))))
    return result + math.log(x) - 0.5 / x + tail


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _log_betainc(x: float, p: float, q: float, grad: bool) -> tuple[float, float, float]:
    """log I_x(p, q) and (with `grad`, else zeros) its derivatives in p and q; x small."""
    pq = p + q
    term = 1.0
    total = 1.0
    log_scale = 0.0
    sum_dp = 0.0  # sum_n t_n * d(log t_n)/dp
    sum_dq = 0.0
    dlog_p = 0.0
    dlog_q = 0.0
    converged = False
    for n in range(_SERIES_MAX_TERMS):
        up = pq + n
        inv_down = 1.0 / (p + 1.0 + n)
        ratio = x * up * inv_down
        term *= ratio
        total += term
        if grad:
            inv_up = 1.0 / up
            dlog_p += inv_up - inv_down
            dlog_q += inv_up
            sum_dp += term * dlog_p
            sum_dq += term * dlog_q
        # The ratios of successive terms tend to x: from above and decreasing when q >= 1,
        # from below when q < 1. Either way max(this ratio, x) bounds every later one, so the
        # tail is at most a geometric series with that ratio.
        bound = max(ratio, x)
        if bound < 1.0 and term * bound <= _SERIES_EPS * (1.0 - bound) * total:
            converged = True
            break
        if total > _RESCALE_AT:
            term /= total
            sum_dp /= total
            sum_dq /= total
            log_scale += math.log(total)
            total = 1.0
    if not converged:
        return -math.inf, 0.0, 0.0
    log_beta = math.lgamma(p) + math.lgamma(q) - math.lgamma(pq)
    log_x = math.log(x)
    log_1mx = math.log1p(-x)
    value = p * log_x + q * log_1mx - math.log(p) - log_beta + math.log(total) + log_scale
    if not grad:
        return value, 0.0, 0.0
    psi_pq = _digamma(pq)
    d_p = log_x - 1.0 / p - _digamma(p) + psi_pq + sum_dp / total
    d_q = log_1mx - _digamma(q) + psi_pq + sum_dq / total
    return value, d_p, d_q


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _mean_shares(eta: float) -> tuple[float, float]:
    """(expit(eta), expit(-eta)), each computed directly so neither loses precision."""
    if eta >= 0.0:
        e = math.exp(-eta)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(eta)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _trial(
    eta: float,
    kappa: float,
    lgamma_kappa: float,
    log_y: float,
    log_1my: float,
    censoring: int,
    grad: bool,
) -> tuple[float, float, float]:
    """One trial's log-likelihood and (with `grad`) its derivatives in eta and kappa."""
    mu, nu = _mean_shares(eta)
    a = mu * kappa
    b = nu * kappa
    if a <= 0.0 or b <= 0.0:  # expit underflowed: this eta is absurdly far out
        return -math.inf, 0.0, 0.0
    if censoring == 0:
        value = lgamma_kappa - math.lgamma(a) - math.lgamma(b)
        value += (a - 1.0) * log_y + (b - 1.0) * log_1my
        if not grad:
            return value, 0.0, 0.0
        psi_a = _digamma(a)
        psi_b = _digamma(b)
        d_a = log_y - psi_a  # plus psi(kappa), added once per call by the caller
        d_b = log_1my - psi_b
    elif censoring < 0:
        value, d_a, d_b = _log_betainc(CLIP_LOW, a, b, grad)
    else:
        value, d_b, d_a = _log_betainc(1.0 - CLIP_HIGH, b, a, grad)
    # da/deta = kappa mu nu = -db/deta; da/dkappa = mu, db/dkappa = nu.
    return value, kappa * mu * nu * (d_a - d_b), mu * d_a + nu * d_b


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _loglik_grad(
    eta: FloatArray,
    kappa: float,
    log_y: FloatArray,
    log_1my: FloatArray,
    censoring: IntArray,
    d_eta: FloatArray,
) -> tuple[float, float]:
    lgamma_kappa = math.lgamma(kappa)
    total = 0.0
    d_kappa = 0.0
    n_observed = 0
    for i in range(eta.size):
        value, d_e, d_k = _trial(
            eta[i], kappa, lgamma_kappa, log_y[i], log_1my[i], censoring[i], True
        )
        total += value
        d_eta[i] = d_e
        d_kappa += d_k
        if censoring[i] == 0:
            n_observed += 1
    # Each observed trial's density has d/dkappa lgamma(kappa) = psi(kappa): added once here.
    d_kappa += n_observed * _digamma(kappa)
    return total, d_kappa


@numba.njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator,unused-ignore]
def _pointwise(
    eta: FloatArray,
    kappa: FloatArray,
    log_y: FloatArray,
    log_1my: FloatArray,
    censoring: IntArray,
    out: FloatArray,
) -> None:
    # Serial on purpose: a threaded numba kernel is not fork-safe, and PyMC forks its chains.
    for s in range(eta.shape[0]):
        lgamma_kappa = math.lgamma(kappa[s])
        for i in range(eta.shape[1]):
            out[s, i] = _trial(
                eta[s, i], kappa[s], lgamma_kappa, log_y[i], log_1my[i], censoring[i], False
            )[0]


def loglik_and_grad(
    eta: npt.ArrayLike, kappa: float, response: BetaResponse
) -> tuple[float, FloatArray, float]:
    """Total log-likelihood at one parameter point, its gradient in eta (n,) and in kappa.

    A non-finite total (a proposal far out in the tails) comes back as -inf with a zero
    gradient, which the sampler treats as a rejected step rather than a NaN.
    """
    eta_a = np.ascontiguousarray(eta, dtype=np.float64)
    d_eta = np.empty_like(eta_a)
    total, d_kappa = _loglik_grad(
        eta_a, float(kappa), response.log_y, response.log_1my, response.censoring, d_eta
    )
    if not (math.isfinite(total) and math.isfinite(d_kappa) and np.isfinite(d_eta).all()):
        return -math.inf, np.zeros_like(eta_a), 0.0
    return float(total), d_eta, float(d_kappa)


def loglik_pointwise(
    eta: npt.ArrayLike, kappa: npt.ArrayLike, response: BetaResponse
) -> FloatArray:
    """Each trial's log-likelihood at each draw: eta (draws, n), kappa (draws,) -> (draws, n).

    A single parameter point may be passed as eta (n,) and a scalar kappa (returns (n,)).
    """
    eta_a = np.asarray(eta, dtype=np.float64)
    single = eta_a.ndim == 1
    eta_2d = np.ascontiguousarray(np.atleast_2d(eta_a))
    kappa_1d = np.ascontiguousarray(np.broadcast_to(np.ravel(kappa), eta_2d.shape[:1]))
    if eta_2d.shape[1] != len(response):
        raise ValueError(f"eta has {eta_2d.shape[1]} trials, the response {len(response)}")
    out = np.empty_like(eta_2d)
    _pointwise(
        eta_2d,
        kappa_1d.astype(np.float64),
        response.log_y,
        response.log_1my,
        response.censoring,
        out,
    )
    return out[0] if single else out
