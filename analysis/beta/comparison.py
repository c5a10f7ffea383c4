"""Scoring fitted beta regressions: PSIS-LOO within a data set, ELPD and R^2 across data sets.

- `loo(fit)`: the expected log pointwise predictive density by Pareto-smoothed importance
  sampling leave-one-out (ArviZ's `psislw`), with its standard error, the effective number of
  parameters and the Pareto k diagnostics. The pointwise log-likelihood is computed in blocks
  of trials, so a 72,000-trial fit with 4,000 draws needs tens of megabytes at a time instead
  of the 2.3 GB the whole matrix would take (ArviZ's `az.loo` holds it several times over).
  The result is the same ELPDData `az.loo(pointwise=True)` returns.
- `compare_fits` / `compare_models`: variants ranked by ELPD (`az.compare`: differences,
  their standard errors, stacking weights), as docs/paradigm.md §5 compares models A-D.
- `transfer(fit, other_trials)`: how well a posterior predicts a data set it never saw (the
  paper's cross-domain test): ELPD = sum over trials of log mean_s p(q_i | theta_s), and the
  R^2 between the predicted mean confidence (posterior mean of mu) and the observed clipped
  confidence, per trial and per condition cell.

Log-likelihoods include the censored trials' probability masses (`analysis.beta.likelihood`):
ELPDs are comparable between models fitted to the same trials, as LOO comparisons need.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import special

from mindshift.analysis.beta.models import (
    VARIANTS,
    BetaFit,
    BetaModelSpec,
    BetaPriors,
    SamplerSettings,
    arviz,
    code_trials,
    fit_beta_model,
    require_bayes,
)
from mindshift.analysis.engines.logodds import FloatArray, clip
from mindshift.analysis.errors import AnalysisInputError

BLOCK_ELEMENTS: Final = 8_000_000
"""Draws x trials per block of the pointwise log-likelihood (64 MB of float64)."""

COMPARE_COLUMNS: Final = (
    "rank",
    "elpd_loo",
    "se",
    "elpd_diff",
    "dse",
    "p_loo",
    "weight",
    "n_high_k",
    "max_k",
    "warning",
    "n",
)


@dataclass(frozen=True, eq=False)
class LooResult:
    """PSIS-LOO of one fit."""

    elpd: float
    """Sum over trials of the leave-one-out log predictive density (higher is better)."""
    se: float
    p_loo: float
    """Effective number of parameters: in-sample lppd minus elpd."""
    n: int
    n_draws: int
    pareto_k: FloatArray = field(repr=False)
    good_k: float
    """Threshold above which a trial's importance sampling is unreliable (0.7 or lower)."""
    elpd_data: Any = field(repr=False)
    """ArviZ ELPDData (pointwise), as `az.loo(..., pointwise=True)` returns; for az.compare."""

    @property
    def n_high_k(self) -> int:
        """Trials whose Pareto k exceeds `good_k`."""
        return int(np.count_nonzero(self.pareto_k > self.good_k))

    @property
    def max_k(self) -> float:
        """The largest Pareto k."""
        return float(np.max(self.pareto_k))

    @property
    def warning(self) -> bool:
        """True when any trial's Pareto k exceeds `good_k` (ArviZ's warning flag)."""
        return self.n_high_k > 0


def _logsumexp(x: FloatArray, axis: int) -> FloatArray:
    """log(sum(exp(x))) along `axis`; an all -inf slice gives -inf.

    Plain numpy: scipy.special.logsumexp is about ten times slower on (trials, 4,000) blocks,
    which made it most of the cost of a LOO.
    """
    peak = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return np.asarray(np.squeeze(total, axis=axis), dtype=np.float64)


def _blocks(n: int, n_draws: int) -> Iterator[slice]:
    step = max(1, BLOCK_ELEMENTS // max(1, n_draws))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _pointwise_blocks(
    fit: BetaFit, design: FloatArray, q: FloatArray
) -> Iterator[tuple[slice, FloatArray, FloatArray]]:
    """(rows, log-likelihood (draws, rows), eta (draws, rows)) for blocks of trials."""
    from mindshift.analysis.beta.likelihood import BetaResponse, beta_response, loglik_pointwise

    coef, kappa = fit.draws()
    response = beta_response(q)
    for rows in _blocks(len(q), coef.shape[0]):
        eta = coef @ design[rows].T
        block = BetaResponse(response.y[rows], response.censoring[rows])
        yield rows, loglik_pointwise(eta, kappa, block), eta


def _reff(fit: BetaFit) -> float:
    """Relative efficiency of the draws, as `az.loo` computes it (mean ESS / draws)."""
    az = arviz()
    if fit.kappa.shape[0] == 1:
        return 1.0
    values = [float(az.ess(fit.coef[:, :, j], method="mean")) for j in range(len(fit.terms))]
    values.append(float(az.ess(fit.kappa, method="mean")))
    return float(np.mean(values)) / float(fit.kappa.size)


def loo(fit: BetaFit) -> LooResult:
    """PSIS-LOO of `fit` on the trials it was fitted to (blockwise; see the module doc)."""
    require_bayes()
    az = arviz()
    xr = importlib.import_module("xarray")  # an ArviZ dependency

    n_draws = fit.kappa.size
    reff = _reff(fit)
    design = fit.data.design.to_numpy(np.float64)
    loo_i = np.empty(len(fit.data))
    lppd_i = np.empty(len(fit.data))
    pareto_k = np.empty(len(fit.data))
    with warnings.catch_warnings():
        # psislw warns per block about high k; the counts are reported in the result instead.
        warnings.simplefilter("ignore")
        for rows, loglik, _ in _pointwise_blocks(fit, design, fit.data.q):
            by_trial = np.ascontiguousarray(loglik.T)  # (trials, draws), as psislw wants
            log_weights, k = az.psislw(-by_trial, reff)
            loo_i[rows] = _logsumexp(log_weights + by_trial, axis=1)
            lppd_i[rows] = _logsumexp(by_trial, axis=1) - math.log(n_draws)
            pareto_k[rows] = k
    n = len(loo_i)
    elpd = float(loo_i.sum())
    se = float(math.sqrt(n * np.var(loo_i)))
    p_loo = float(lppd_i.sum()) - elpd
    good_k = min(1.0 - 1.0 / math.log10(n_draws), 0.7)
    warn = bool(np.any(pareto_k > good_k))
    # The same fields, in the same order, as az.loo(pointwise=True) builds.
    elpd_data = az.ELPDData(
        data=[
            elpd,
            se,
            p_loo,
            n_draws,
            n,
            warn,
            xr.DataArray(loo_i, dims=["trial"], name="loo_i"),
            xr.DataArray(pareto_k, dims=["trial"]),
            "log",
            good_k,
        ],
        index=[
            "elpd_loo",
            "se",
            "p_loo",
            "n_samples",
            "n_data_points",
            "warning",
            "loo_i",
            "pareto_k",
            "scale",
            "good_k",
        ],
    )
    return LooResult(elpd, se, p_loo, n, n_draws, pareto_k, good_k, elpd_data)


def compare_fits(
    fits: Mapping[str, BetaFit], loos: Mapping[str, LooResult] | None = None
) -> pd.DataFrame:
    """Fits of the same trials ranked by PSIS-LOO ELPD (best first; COMPARE_COLUMNS).

    elpd_diff and dse are each model's difference from the best and its standard error
    (`az.compare`); weight is the stacking weight; n_high_k counts trials with Pareto k above
    the reliability threshold. Pass `loos` to reuse LOO results already computed.
    """
    require_bayes()
    az = arviz()

    if not fits:
        raise ValueError("no fits to compare")
    sizes = {name: fit.n for name, fit in fits.items()}
    if len(set(sizes.values())) > 1:
        raise AnalysisInputError(f"LOO compares fits of the same trials only; sizes {sizes}")
    results = {name: (loos or {}).get(name) or loo(fit) for name, fit in fits.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({name: result.elpd_data for name, result in results.items()}, ic="loo")
    ranked: pd.DataFrame = table.assign(
        n_high_k=[results[str(name)].n_high_k for name in table.index],
        max_k=[results[str(name)].max_k for name in table.index],
        n=[results[str(name)].n for name in table.index],
    )
    ranked.index.name = "variant"
    return ranked.loc[:, list(COMPARE_COLUMNS)]


def compare_models(
    trials: pd.DataFrame,
    variants: Sequence[str | BetaModelSpec] = tuple(VARIANTS),
    *,
    priors: BetaPriors | None = None,
    settings: SamplerSettings | None = None,
) -> pd.DataFrame:
    """Fit each variant (default A-D) to `trials` and rank them by PSIS-LOO (`compare_fits`).

    Every variant is fitted to the same trials: those usable by all of them.
    """
    fits = {}
    for variant in variants:
        fit = fit_beta_model(trials, variant, priors=priors, settings=settings)
        fits[fit.name] = fit
    return compare_fits(fits)


@dataclass(frozen=True)
class TransferScore:
    """How well a fitted posterior predicts another data set."""

    elpd: float
    """Sum over the new trials of log mean_s p(q_i | theta_s)."""
    se: float
    elpd_per_trial: float
    r2: float
    """Squared correlation of predicted mean confidence and observed (clipped) confidence,
    over trials."""
    r2_cells: float
    """The same over condition cells (display x advice x accuracy means); NaN with < 3 cells."""
    rmse: float
    """Root mean squared error of the predicted mean confidence, over trials."""
    n: int
    n_cells: int


def predicted_mean(fit: BetaFit, trials: pd.DataFrame) -> pd.Series:
    """Posterior mean of mu (the predicted mean final confidence) for each usable trial,
    indexed like `trials`."""
    data = code_trials(trials, fit.terms)
    coef, _ = fit.draws()
    design = data.design.to_numpy(np.float64)
    out = np.empty(len(data))
    for rows in _blocks(len(data), coef.shape[0]):
        out[rows] = special.expit(coef @ design[rows].T).mean(axis=0)
    return pd.Series(out, index=data.source_index, name="predicted")


def _r2(x: FloatArray, y: FloatArray) -> float:
    if x.size < 3 or np.std(x) == 0.0 or np.std(y) == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def transfer(fit: BetaFit, other_trials: pd.DataFrame) -> TransferScore:
    """Score `fit` (fitted on one run or domain) on `other_trials` (another): ELPD and R^2.

    The new trials are coded with the fit's own terms; nothing is refitted. To compare with
    the in-sample fit, score the fitted trials the same way (`transfer(fit, same_trials)`).
    """
    require_bayes()
    data = code_trials(other_trials, fit.terms)
    if len(data) == 0:
        raise AnalysisInputError("no usable trials to score the transfer on")
    design = data.design.to_numpy(np.float64)
    n_draws = fit.kappa.size
    elpd_i = np.empty(len(data))
    predicted = np.empty(len(data))
    for rows, loglik, eta in _pointwise_blocks(fit, design, data.q):
        elpd_i[rows] = _logsumexp(loglik, axis=0) - math.log(n_draws)
        predicted[rows] = special.expit(eta).mean(axis=0)
    observed = clip(data.q)
    cells = data.cells.assign(predicted=predicted, observed=observed)
    means = cells.groupby(["display", "advice", "accuracy"], dropna=False)[
        ["predicted", "observed"]
    ].mean()
    n = len(elpd_i)
    return TransferScore(
        elpd=float(elpd_i.sum()),
        se=float(math.sqrt(n * np.var(elpd_i))),
        elpd_per_trial=float(elpd_i.mean()),
        r2=_r2(predicted, observed),
        r2_cells=_r2(means["predicted"].to_numpy(), means["observed"].to_numpy()),
        rmse=float(np.sqrt(np.mean((predicted - observed) ** 2))),
        n=n,
        n_cells=len(means),
    )
