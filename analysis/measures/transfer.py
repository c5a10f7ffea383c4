"""Transfer: fit the update model on one domain (run) and predict another.

The paper fits its model D on one domain and shows it predicts the other (docs/paradigm.md §5:
ELPD, R^2 about 0.97). `transfer_runs(TRAIN_DIR, TEST_DIR)` does this per model present in
both runs, with
- model D of the Bayesian beta regression (`analysis.beta.regression.transfer`) when the
  optional `bayes` extra (PyMC) is installed, or
- the Tobit update fit (`analysis.measures.fit`) otherwise, or when asked (`kind="tobit"`): the
  training run's coefficients and noise predict each test trial's logit(final confidence),
  scored by the censored-normal log-likelihood per trial (to compare with the test run's own,
  in-sample fit) and by the predicted mean final confidence against the observed one.
The evidence term is the K-option Bayes log-odds shift, so a fit on a two-option domain
(latitude) predicts a four-option one (world-facts, arithmetic) without recoding.

R^2 follows `analysis.beta.comparison`: the squared correlation of predicted and observed
(clipped) final confidence, over trials and over condition cells (display x advice x
accuracy means). A pure function of the runs' files, like every analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from mindshift.analysis.beta.fitted_model import beta_entry
from mindshift.analysis.data.load import load_run
from mindshift.analysis.data.schema import model_ids
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.engines.logodds import CLIP_HIGH, CLIP_LOW, clip, logit
from mindshift.analysis.errors import AnalysisInputError
from mindshift.analysis.measures.fit import TERMS, UpdateFit, design_matrix, fit_update_model

TransferKind = Literal["auto", "beta", "tobit"]
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
"""Gauss-Hermite (probabilists') nodes for E[f(Z)], Z standard normal."""
TRANSFER_COLUMNS: Final = (
    "model",
    "kind",
    "n_train",
    "n_test",
    "score_per_trial",
    "own_score_per_trial",
    "r2",
    "r2_cells",
    "rmse",
    "n_cells",
)


@dataclass(frozen=True)
class UpdateTransfer:
    """How a Tobit update fit of one data set predicts another."""

    loglik_per_trial: float
    """Mean censored-normal log-likelihood of the new trials under the fitted parameters."""
    r2: float
    r2_cells: float
    rmse: float
    n: int
    n_cells: int
    missing_terms: tuple[str, ...]
    """Terms the new trials use but the fit could not estimate (taken as 0)."""


def predicted_confidence(fit: UpdateFit, trials: pd.DataFrame) -> pd.Series:
    """The fit's mean final confidence for each usable trial (indexed like `trials`).

    E[expit(clamp(eta + noise Z, logit(0.01), logit(0.99)))], Z standard normal: the mean of
    the censored log-odds model on the probability scale (Gauss-Hermite quadrature).
    """
    design, _ = design_matrix(trials)
    eta = design.to_numpy(np.float64) @ _coefficients(fit)
    low, high = float(logit(CLIP_LOW)), float(logit(CLIP_HIGH))
    sigma = fit.noise if math.isfinite(fit.noise) else 0.0
    latent = np.clip(eta[:, None] + sigma * _NODES[None, :], low, high)
    mean = special.expit(latent) @ _WEIGHTS / _WEIGHTS.sum()
    return pd.Series(mean, index=design.index, name="predicted")


def _coefficients(fit: UpdateFit) -> np.ndarray:
    values = np.array([getattr(fit, term) for term in TERMS], dtype=np.float64)
    return np.nan_to_num(values, nan=0.0)


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.std(x) == 0.0 or np.std(y) == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def transfer_update_fit(fit: UpdateFit, trials: pd.DataFrame) -> UpdateTransfer:
    """Score a Tobit update fit (from another domain) on `trials`; nothing is refitted."""
    design, response = design_matrix(trials)
    if design.empty:
        raise AnalysisInputError("no usable trials to score the transfer on")
    eta = design.to_numpy(np.float64) @ _coefficients(fit)
    sigma = max(fit.noise, 1e-4) if math.isfinite(fit.noise) else 1e-4
    low, high = float(logit(CLIP_LOW)), float(logit(CLIP_HIGH))
    at_low, at_high = response <= low, response >= high
    inside = ~(at_low | at_high)
    loglik = np.empty(response.size)
    loglik[at_low] = stats.norm.logcdf((low - eta[at_low]) / sigma)
    loglik[at_high] = stats.norm.logsf((high - eta[at_high]) / sigma)
    loglik[inside] = stats.norm.logpdf(response[inside], eta[inside], sigma)
    predicted = predicted_confidence(fit, trials).to_numpy()
    observed = clip(trials.loc[design.index, "final_prob_initial"].to_numpy(np.float64))
    cells = trials.loc[design.index, ["display", "advice", "accuracy"]].assign(
        predicted=predicted, observed=observed
    )
    means = cells.groupby(["display", "advice", "accuracy"], dropna=False)[
        ["predicted", "observed"]
    ].mean()
    used = design.columns[(design != 0.0).any(axis=0).to_numpy()]
    missing = tuple(t for t in used if not math.isfinite(float(getattr(fit, t))))
    return UpdateTransfer(
        loglik_per_trial=float(loglik.mean()),
        r2=_r2(predicted, observed),
        r2_cells=_r2(means["predicted"].to_numpy(), means["observed"].to_numpy()),
        rmse=float(np.sqrt(np.mean((predicted - observed) ** 2))),
        n=int(response.size),
        n_cells=len(means),
        missing_terms=missing,
    )


def transfer_table(
    train: pd.DataFrame, test: pd.DataFrame, *, kind: TransferKind = "auto"
) -> pd.DataFrame:
    """Per model in both prepared trials tables (`prepare_trials(...).trials`): fit on
    `train`, score on `test` (TRANSFER_COLUMNS plus the training fit's estimates).

    `score_per_trial` is the test trials' mean log-likelihood under the training fit (Tobit:
    censored-normal log-likelihood; beta: ELPD per trial); `own_score_per_trial` the same
    under the test run's own fit (in-sample), the ceiling a transfer is read against.
    """
    use_beta = kind == "beta" or (kind == "auto" and beta_entry() is not None)
    rows: list[dict[str, Any]] = []
    for model in sorted(set(model_ids(train)) & set(model_ids(test))):
        fit_on, score_on = _of(train, model), _of(test, model)
        if use_beta:
            rows.append({"model": model, **_beta_row(fit_on, score_on)})
            continue
        fit = fit_update_model(fit_on)
        own = fit_update_model(score_on)
        score = transfer_update_fit(fit, score_on)
        rows.append(
            {
                "model": model,
                "kind": "tobit",
                "n_train": fit.n,
                "n_test": score.n,
                "score_per_trial": score.loglik_per_trial,
                "own_score_per_trial": own.loglik / own.n if own.n else math.nan,
                "r2": score.r2,
                "r2_cells": score.r2_cells,
                "rmse": score.rmse,
                "n_cells": score.n_cells,
                **{f"train_{term}": getattr(fit, term) for term in (*TERMS, "noise")},
                "missing_terms": ", ".join(score.missing_terms),
            }
        )
    if not rows:
        raise AnalysisInputError("the two runs share no model id: nothing to transfer")
    return pd.DataFrame(rows)


def _of(trials: pd.DataFrame, model: str) -> pd.DataFrame:
    return trials.loc[trials["model"] == model]


def _beta_row(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    from mindshift.analysis.beta.regression import fit_beta_model, transfer

    fit = fit_beta_model(train, "D")
    score = transfer(fit, test)
    own = transfer(fit_beta_model(test, "D"), test)
    return {
        "kind": "beta (model D)",
        "n_train": fit.n,
        "n_test": score.n,
        "score_per_trial": score.elpd_per_trial,
        "own_score_per_trial": own.elpd_per_trial,
        "r2": score.r2,
        "r2_cells": score.r2_cells,
        "rmse": score.rmse,
        "n_cells": score.n_cells,
        "elpd": score.elpd,
        "elpd_se": score.se,
    }


def transfer_runs(
    train_dir: Path | str,
    test_dir: Path | str,
    *,
    kind: TransferKind = "auto",
    prior: Prior = "auto",
) -> pd.DataFrame:
    """Fit on the run in `train_dir`, predict the run in `test_dir`, per shared model id.

    Both runs are prepared as `analyse` prepares them (framing, calibration on the `prior`
    scale, Bayes shifts). See `transfer_table` for the columns.
    """
    train, test = (load_run(path, prior=prior).trials for path in (train_dir, test_dir))
    return transfer_table(train, test, kind=kind)
