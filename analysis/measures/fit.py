"""The update model: the regression that recovers the simulated agent's parameters.

logit(clip(q)) = intercept + prior_weight * logit(clip(c)) + choice_support * [display = shown]
                 + w_same * Delta * [same] + w_opposite * Delta * [opposite]
                 + Normal(0, noise)

with q the final probability of the initially chosen option, c the initial confidence and
Delta the ideal observer's log-odds shift of the initially chosen option by the advice
(`analysis.engines.bayes.bayes_shift`): for two options Delta = logit(clip(a)) under same advice and
-logit(clip(a)) under opposite advice, so the terms are the familiar w_same * logit(a) and
w_opposite * (-logit(a)); with K options Delta = logit(post) - logit(c) of the K-option Bayes
update, the natural signed evidence. This is the docs/design.md agent with a free intercept and
prior weight (0 and 1 for the agent).
Because q is clipped before its logit, q at or beyond a clip bound is censored, and the fit is
a Tobit regression (`analysis.engines.tobit`); OLS on the clipped values would shrink every weight.

Choices: the fit is of the paper's main design — displays shown, hidden and other (the
controls, answer-wrong and in-context, are reported cell by cell, not pooled into the shown
flag); `other` and `hidden` trials have shown flag 0 (docs/design.md); only trials with a known
c, q and Delta enter; a term the data cannot identify (no same-advice trials; every trial
shown, so the flag equals the intercept) is left out of the design and reported as NaN.

Errors: `se` is the model-based error (trials independent); `se_item` clusters by item (the
sandwich of `analysis.engines.clustered`), the one to use for intervals and tests. The contrast
w_opposite - w_same with its clustered error tests the asymmetry the paper reports (advice
against the initial answer weighs more than advice for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from analysis.data.prepare import at_bayes_clip
from analysis.data.schema import MAIN_DISPLAYS
from analysis.engines.bayes import ADVICE_SIGN, with_bayes
from analysis.engines.clustered import (
    MIN_ITEMS,
    cluster_codes,
    interval,
    n_clusters,
    p_value,
    too_few_items,
)
from analysis.engines.logodds import BAYES_CLIP, CLIP_HIGH, CLIP_LOW, logit
from analysis.engines.tobit import tobit_fit

TERMS: Final = ("intercept", "prior_weight", "choice_support", "w_same", "w_opposite")
"""Coefficients in design order; a term enters only if it adds to the design's rank."""


@dataclass(frozen=True)
class UpdateFit:
    """Estimates of the update model for one set of trials (NaN: not identifiable/no data)."""

    choice_support: float
    w_same: float
    w_opposite: float
    intercept: float
    prior_weight: float
    noise: float
    """The residual standard deviation on the log-odds scale (the agent's `noise`)."""
    n: int
    n_censored_low: int
    n_censored_high: int
    loglik: float
    converged: bool
    se: dict[str, float] = field(default_factory=dict)
    """Standard errors by term, treating trials as independent (items repeat: optimistic)."""
    se_item: dict[str, float] = field(default_factory=dict)
    """Standard errors by term, clustered by item (sandwich)."""
    n_items: int = 0
    opposite_minus_same: dict[str, float] = field(default_factory=dict)
    """w_opposite - w_same: estimate, se_item, ci_low, ci_high, p_value (t with G - 1 df)."""
    note: str = ""
    """Why the estimates are NaN (too few trials or questions); empty when they are not."""

    def to_dict(self) -> dict[str, object]:
        """Flat JSON-ready mapping (NaN still as float; `analysis.render.summary` nulls it)."""
        return asdict(self)


def design_matrix(trials: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The full design (one column per TERM) and the clipped-logit response, finite rows only.

    The design keeps the index labels of the rows of `trials` it uses.
    """
    c = trials["initial_confidence"].to_numpy(np.float64)
    q = trials["final_prob_initial"].to_numpy(np.float64)
    advice = trials["advice"]
    shifts = trials if "bayes_shift" in trials.columns else with_bayes(trials)
    evidence = shifts["bayes_shift"].to_numpy(np.float64)
    same = advice.eq("same").to_numpy(bool)
    opposite = advice.eq("opposite").to_numpy(bool)
    # Delta is negative under opposite advice (-logit(a) for two options), so the opposite
    # weight, like w_same, is positive for a model that follows the advice and equals the
    # agent's w_opposite.
    columns = pd.DataFrame(
        {
            "intercept": np.ones(len(trials)),
            "prior_weight": logit(c),
            "choice_support": (trials["display"] == "shown").to_numpy(np.float64),
            "w_same": np.where(same, evidence, 0.0),
            "w_opposite": np.where(opposite, evidence, 0.0),
        },
        index=trials.index,
    )
    response = logit(q)
    # An advice type the model does not know (a future paradigm's) has no term: leave it out
    # rather than read it as neutral.
    known = advice.isin(list(ADVICE_SIGN)).to_numpy(bool)
    main = trials["display"].isin(list(MAIN_DISPLAYS)).to_numpy(bool)
    keep = (
        known & main & np.isfinite(c) & np.isfinite(q) & np.isfinite(columns.to_numpy()).all(axis=1)
    )
    return columns.loc[keep], response[keep]


def _identifiable(design: pd.DataFrame) -> list[str]:
    kept: list[str] = []
    for term in TERMS:
        candidate = design[[*kept, term]].to_numpy()
        if np.linalg.matrix_rank(candidate) == len(kept) + 1:
            kept.append(term)
    return kept


def _contrast(
    terms: list[str], coef: np.ndarray, cov: np.ndarray, n_items: int
) -> dict[str, float]:
    nan = float("nan")
    if "w_opposite" not in terms or "w_same" not in terms:
        return dict.fromkeys(("estimate", "se_item", "ci_low", "ci_high", "p_value"), nan)
    weights = np.zeros(len(terms))
    weights[terms.index("w_opposite")], weights[terms.index("w_same")] = 1.0, -1.0
    estimate = float(weights @ coef)
    se = float(np.sqrt(max(float(weights @ cov @ weights), 0.0)))
    low, high = interval(estimate, se, n_items - 1)
    return {
        "estimate": estimate,
        "se_item": se,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p_value(estimate, se, n_items - 1)),
    }


def fit_update_model(trials: pd.DataFrame) -> UpdateFit:
    """Tobit fit of the update model to `trials` (normally one model's trials).

    The trials are prepared first (`analysis.data.prepare`) and their Bayes shifts taken at the
    simulated agent's clip bounds whatever clip the table's Bayes baseline used: those
    bounds are this model's censoring points.
    """
    trials = at_bayes_clip(trials, BAYES_CLIP)
    design, response = design_matrix(trials)
    terms = _identifiable(design) if len(design) else []
    nan = float("nan")
    g = int(trials.loc[design.index, "item_id"].nunique())
    # One question leaves the prior weight unidentified (one initial confidence) and no
    # clustered error: the estimates would describe another model, so none are reported.
    note = (
        f"too few trials ({len(design)}) for the {len(terms)} identifiable terms"
        if not terms or len(design) <= len(terms)
        else too_few_items(g)
        if g < MIN_ITEMS
        else ""
    )
    if note:
        no_se = {term: nan for term in TERMS}
        return UpdateFit(
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            len(design),
            0,
            0,
            nan,
            False,
            no_se,
            dict(no_se),
            g,
            _contrast([], np.zeros(0), np.zeros((0, 0)), 0),
            note,
        )
    codes = cluster_codes(trials.loc[design.index, "item_id"])
    result = tobit_fit(
        design[terms].to_numpy(),
        response,
        lower=float(logit(CLIP_LOW)),
        upper=float(logit(CLIP_HIGH)),
        clusters=codes,
    )
    coef: Mapping[str, float] = dict(zip(terms, map(float, result.coef), strict=True))
    se = {term: float(value) for term, value in zip(terms, result.se, strict=True)}
    clustered = np.sqrt(np.clip(np.diag(result.cov_cluster), 0.0, None))
    se_item = {term: float(value) for term, value in zip(terms, clustered, strict=True)}
    g = n_clusters(codes)
    return UpdateFit(
        choice_support=coef.get("choice_support", nan),
        w_same=coef.get("w_same", nan),
        w_opposite=coef.get("w_opposite", nan),
        intercept=coef.get("intercept", nan),
        prior_weight=coef.get("prior_weight", nan),
        noise=result.sigma,
        n=result.n,
        n_censored_low=result.n_lower,
        n_censored_high=result.n_upper,
        loglik=result.loglik,
        converged=result.converged,
        se={term: se.get(term, nan) for term in TERMS},
        se_item={term: se_item.get(term, nan) for term in TERMS},
        n_items=g,
        opposite_minus_same=_contrast(terms, result.coef, result.cov_cluster, g),
    )


def fit_by_model(trials: pd.DataFrame) -> dict[str, UpdateFit]:
    """`fit_update_model` for each model, keyed by model id (sorted)."""
    return {
        str(model): fit_update_model(group) for model, group in trials.groupby("model", sort=True)
    }


FIT_TABLE_COLUMNS: Final = (
    "model",
    "term",
    "estimate",
    "se_item",
    "ci_low",
    "ci_high",
    "se_model",
    "n",
    "n_items",
    "note",
)


def fit_table(fits: Mapping[str, UpdateFit]) -> pd.DataFrame:
    """The fits as a tidy table: one row per model x term (noise included), clustered errors
    with 95 % t(G - 1) intervals, and the model-based error for comparison."""
    rows: list[dict[str, object]] = []
    for model, fit in fits.items():
        df = fit.n_items - 1
        for term in (*TERMS, "noise"):
            estimate = float(getattr(fit, term))
            se = fit.se_item.get(term, float("nan"))
            low, high = interval(estimate, se, df)
            rows.append(
                {
                    "model": model,
                    "term": term,
                    "estimate": estimate,
                    "se_item": se,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "se_model": fit.se.get(term, float("nan")),
                    "n": fit.n,
                    "n_items": fit.n_items,
                    "note": fit.note,
                }
            )
    return pd.DataFrame(rows, columns=list(FIT_TABLE_COLUMNS))
