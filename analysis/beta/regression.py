"""The Bayesian beta regression of docs/paradigm.md §5 (models A-D): the public entry points.

    fit = fit_beta_model(trials, "D")          # posterior, summary, diagnostics (BetaFit)
    compare_models(trials)                     # A-D ranked by PSIS-LOO ELPD (DataFrame)
    transfer(fit, other_domain_trials)         # ELPD and R^2 on data the fit never saw

The model, its coding, priors and sampler are documented in `analysis.beta.models` and
docs/beta_regression.md; scoring in `analysis.beta.comparison`. Everything here needs the
optional `bayes` extra (PyMC, ArviZ) at call time only: importing this module does not, and a
call without it raises `BayesExtraMissing` (an ImportError) saying what to install.

`report_tables` is the report's entry (the contract of `analysis.beta.fitted_model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd

from mindshift.analysis.beta.comparison import (
    COMPARE_COLUMNS,
    LooResult,
    TransferScore,
    compare_fits,
    compare_models,
    loo,
    predicted_mean,
    transfer,
)
from mindshift.analysis.beta.fitted_model import ModelTable
from mindshift.analysis.beta.models import (
    KAPPA,
    TERM_ORDER,
    VARIANTS,
    BayesExtraMissing,
    BetaData,
    BetaFit,
    BetaModelSpec,
    BetaPriors,
    SamplerSettings,
    code_trials,
    fit_beta_model,
    identifiable_terms,
    require_bayes,
    variant_spec,
)

__all__ = [
    "COMPARE_COLUMNS",
    "KAPPA",
    "TERM_ORDER",
    "VARIANTS",
    "BayesExtraMissing",
    "BetaData",
    "BetaFit",
    "BetaModelSpec",
    "BetaPriors",
    "LooResult",
    "SamplerSettings",
    "TransferScore",
    "code_trials",
    "compare_fits",
    "compare_models",
    "fit_beta_model",
    "identifiable_terms",
    "loo",
    "predicted_mean",
    "report_tables",
    "require_bayes",
    "transfer",
    "variant_spec",
]

POSTERIOR_COLUMNS: Final = ("mean", "sd", "ci_low", "ci_high", "r_hat", "ess_bulk")


def report_tables(
    trials: pd.DataFrame,
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    settings: SamplerSettings | None = None,
) -> list[ModelTable]:
    """The report's fitted-model tables: per model, A-D by PSIS-LOO and model D's posterior.

    Each model's trials are fitted separately (four NUTS fits per model: minutes on tens of
    thousands of trials). The last of `variants` is the one whose posterior is tabled.
    """
    comparisons: list[pd.DataFrame] = []
    posteriors: list[pd.DataFrame] = []
    notes: list[str] = []
    for model, group in trials.groupby("model", sort=True):
        fits = {name: fit_beta_model(group, name, settings=settings) for name in variants}
        table = compare_fits(fits)
        table.insert(0, "description", [fits[str(v)].spec.description for v in table.index])
        comparisons.append(table.assign(model=str(model)).set_index("model", append=True))
        last = fits[variants[-1]]
        posterior = last.summary.loc[:, list(POSTERIOR_COLUMNS)]
        posteriors.append(posterior.assign(model=str(model)).set_index("model", append=True))
        dropped = (
            f"; terms not identifiable, left out: {', '.join(last.dropped)}" if last.dropped else ""
        )
        notes.append(
            f"{model}: {last.n:,} trials ({last.n_censored_low:,} censored low, "
            f"{last.n_censored_high:,} high), {last.divergences} divergences, "
            f"max r_hat {last.max_r_hat:.3f}{dropped}"
        )
    comparison = pd.concat(comparisons).reorder_levels(["model", "variant"])
    posterior = pd.concat(posteriors).reorder_levels(["model", "parameter"])
    ci = f"{round(100 * fits[variants[-1]].ci_prob)} %"
    return [
        ModelTable(
            title="Beta regression: models A-D compared by PSIS-LOO (higher ELPD is better)",
            table=comparison,
            source="mindshift.analysis.beta.comparison.compare_fits",
            note="A prior only; B no display flag; C one advice weight; D separate "
            "same/opposite weights + shown flag. elpd_diff and dse: difference from the best "
            "model and its standard error; n_high_k: trials with Pareto k above 0.7.",
        ),
        ModelTable(
            title=f"Beta regression, model {variants[-1]}: posterior",
            table=posterior,
            source="mindshift.analysis.beta.models.fit_beta_model",
            note=f"logit(mean final confidence) = intercept + prior_weight·logit(c) "
            f"+ choice_support·[shown] + w_same·logit(a)·[same] + w_opposite·(-logit(a))·"
            f"[opposite]; kappa: beta precision. ci_low/ci_high: {ci} equal-tailed "
            f"interval. " + "; ".join(notes),
        ),
    ]
