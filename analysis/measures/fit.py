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

The estimator follows the model's confidence readout (the trials' `readout` column;
`estimator_for`), because what a confidence can say depends on how it was read:
- `logprobs` (and a table without readouts): the Tobit censored at BAYES_CLIP (0.01 / 0.99),
  the agent's own clip.
- `sampling` (and `ptrue` read by sampling): the final frequency is a count k of N answers,
  fitted by its own likelihood, the binomial logit-normal regression
  (`analysis.engines.binomial_logit_normal`; N inferred from the grid of frequencies,
  `analysis.engines.readout_grid`); c is clipped to [1/(2N), 1 - 1/(2N)], what N answers
  resolve. The Tobit censored at 0.01 reads a frequency of 0 or 1 as "beyond 0.01", and every
  weight overshoots (+10..+15 % for N = 20 on the simulated agent); censored at 1/(2N)
  (`tobit-resolution`, kept for comparison) it is within 8 %. `noise` is then the spread of
  the belief's log-odds, sampling noise of c included.
- `verbal`, `verbal-2stage`: a confidence stated on a grid of step r (the largest of 1, 5, 10
  points dividing every stated value) only places the true value within r / 2 of it, so the
  fit is the interval-censored Tobit (`analysis.engines.interval_tobit`): the final statement
  s gives q in [s - r/2, s + r/2] (clipped to [0, 1]; with K options, after a change of answer
  q = (1 - s) / (K - 1), whose interval follows from s's); c is clipped to [r/2, 1 - r/2].
  The plain Tobit overshoots by +20..+33 % when stated values are rounded to 10.
- `ptrue` read by logprobs: a probability, fitted as logprobs are.
A model whose rows mix readouts is not fitted (its note says so): fit each readout's rows
separately (a run holding one model under several readouts has an entry per readout).

Errors: `se` is the model-based error (trials independent); `se_item` clusters by item (the
sandwich of `analysis.engines.clustered`), the one to use for intervals and tests. The contrast
w_opposite - w_same with its clustered error tests the asymmetry the paper reports (advice
against the initial answer weighs more than advice for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mindshift.analysis.data.prepare import at_bayes_clip
from mindshift.analysis.data.schema import MAIN_DISPLAYS
from mindshift.analysis.engines.bayes import ADVICE_SIGN, with_bayes
from mindshift.analysis.engines.binomial_logit_normal import binomial_logit_normal_fit
from mindshift.analysis.engines.clustered import (
    MIN_ITEMS,
    cluster_codes,
    interval,
    n_clusters,
    p_value,
    too_few_items,
)
from mindshift.analysis.engines.interval_tobit import interval_tobit_fit
from mindshift.analysis.engines.logodds import BAYES_CLIP, CLIP_HIGH, CLIP_LOW, logit
from mindshift.analysis.engines.readout_grid import rounding_step, sample_count
from mindshift.analysis.engines.tobit import TobitResult, tobit_fit

TERMS: Final = ("intercept", "prior_weight", "choice_support", "w_same", "w_opposite")
"""Coefficients in design order; a term enters only if it adds to the design's rank."""


EstimatorName = Literal[
    "tobit", "tobit-resolution", "binomial-logit-normal", "interval-tobit", "none"
]
"""The update fit's estimators: the Tobit censored at BAYES_CLIP, the Tobit censored at the
readout's resolution, the binomial logit-normal regression of sampled counts, the
interval-censored Tobit; "none" when the rows cannot be fitted."""

LOGPROBS_READOUT: Final = "logprobs"
SAMPLED_READOUTS: Final = frozenset({"sampling", "ptrue"})
STATED_READOUTS: Final = frozenset({"verbal", "verbal-2stage"})


@dataclass(frozen=True)
class ReadoutEstimator:
    """The estimator of the update model fitting one readout's confidences, and why."""

    readout: str
    """The rows' readout (`harness.types.ReadoutName`, or "choice-only")."""
    name: EstimatorName
    reason: str
    bound: float = BAYES_CLIP
    """c and q are clipped to [bound, 1 - bound] before their logit; for the Tobits, also
    the censoring points."""
    step: float = 0.0
    """The interval-censored Tobit's rounding step on the probability scale (0: none)."""
    samples: int = 0
    """The binomial fit's number of sampled answers per confidence (0: none)."""


def _readouts(trials: pd.DataFrame) -> list[str]:
    if "readout" not in trials.columns:
        return [LOGPROBS_READOUT]
    return sorted({str(value) for value in trials["readout"].dropna().unique()}) or [
        LOGPROBS_READOUT
    ]


def _plain(readout: str, reason: str) -> ReadoutEstimator:
    return ReadoutEstimator(readout, "tobit", reason)


def estimator_for(trials: pd.DataFrame) -> ReadoutEstimator:
    """The estimator for a model's trials, chosen by their readout (the module docstring)."""
    readouts = _readouts(trials)
    if len(readouts) > 1:
        return ReadoutEstimator(
            "+".join(readouts),
            "none",
            f"the rows mix readouts ({', '.join(readouts)}): fit each readout's rows separately",
        )
    readout = readouts[0]
    values = np.concatenate(
        [
            trials["initial_confidence"].to_numpy(np.float64),
            trials["final_prob_initial"].to_numpy(np.float64),
        ]
    )
    if readout in SAMPLED_READOUTS:
        count = sample_count(values)
        if count is None:
            return _plain(
                readout,
                "confidences on no grid of 1/N (probabilities, not frequencies): the Tobit "
                f"censored at {BAYES_CLIP} / {1 - BAYES_CLIP}",
            )
        return ReadoutEstimator(
            readout,
            "binomial-logit-normal",
            f"frequencies of N = {count} answers: the binomial likelihood of the counts, "
            f"their log-odds normal around the update model; c clipped to 1/(2N)",
            bound=1.0 / (2 * count),
            samples=count,
        )
    if readout in STATED_READOUTS:
        stated = np.concatenate(
            [
                trials["initial_confidence"].to_numpy(np.float64),
                trials["final_confidence"].to_numpy(np.float64),
            ]
        )
        points = rounding_step(stated)
        if points is None:
            return _plain(
                readout,
                "stated confidences on no grid of 1, 5 or 10 points: the Tobit censored at "
                f"{BAYES_CLIP} / {1 - BAYES_CLIP}",
            )
        step = points / 100.0
        return ReadoutEstimator(
            readout,
            "interval-tobit",
            f"confidences stated in steps of {points} points place q only within {points / 2:g} "
            "points of the stated value: the interval-censored Tobit",
            bound=step / 2.0,
            step=step,
        )
    return _plain(
        readout,
        f"probabilities read from the model: the Tobit censored at {BAYES_CLIP} / {1 - BAYES_CLIP}",
    )


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
    readout: str = LOGPROBS_READOUT
    """The readout of the fitted trials' confidences."""
    estimator: EstimatorName = "tobit"
    """The estimator used (`estimator_for`)."""
    estimator_reason: str = ""
    """Why that estimator suits the readout."""

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


def _stated_intervals(rows: pd.DataFrame, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds bounds of q for stated confidences of rounding `step` (module docstring)."""
    stated = rows["final_confidence"].to_numpy(np.float64)
    changed = rows["changed_mind"].to_numpy(bool)
    others = np.maximum(rows["n_options"].to_numpy(np.float64) - 1.0, 1.0)
    half = step / 2.0
    low = np.where(changed, (1.0 - stated - half) / others, stated - half)
    high = np.where(changed, (1.0 - stated + half) / others, stated + half)
    # Bound 0: an interval reaching 0 or 1 is open there (log-odds -inf or +inf).
    return logit(np.clip(low, 0.0, 1.0), 0.0), logit(np.clip(high, 0.0, 1.0), 0.0)


def _fit_engine(
    estimator: ReadoutEstimator,
    rows: pd.DataFrame,
    design: pd.DataFrame,
    response: np.ndarray,
    terms: list[str],
    codes: npt.NDArray[np.int64],
) -> TobitResult:
    if estimator.name == "tobit":
        return tobit_fit(
            design[terms].to_numpy(),
            response,
            lower=float(logit(CLIP_LOW)),
            upper=float(logit(CLIP_HIGH)),
            clusters=codes,
        )
    bound = estimator.bound
    x = design.copy()
    x["prior_weight"] = logit(rows["initial_confidence"].to_numpy(np.float64), bound)
    if estimator.name == "interval-tobit":
        low, high = _stated_intervals(rows, estimator.step)
        return interval_tobit_fit(x[terms].to_numpy(), low, high, clusters=codes)
    if estimator.name == "binomial-logit-normal":
        draws = float(estimator.samples)
        counts = np.rint(rows["final_prob_initial"].to_numpy(np.float64) * draws)
        return binomial_logit_normal_fit(
            x[terms].to_numpy(), counts, np.full(len(counts), draws), clusters=codes
        )
    # The bounds through the very logit of the response: the engine tells a censored value by
    # equality with its bound, and another formula may differ from it in the last bit.
    lower, upper = logit(np.array([bound, 1.0 - bound]), bound)
    return tobit_fit(
        x[terms].to_numpy(),
        logit(rows["final_prob_initial"].to_numpy(np.float64), bound),
        lower=float(lower),
        upper=float(upper),
        clusters=codes,
    )


def at_resolution(estimator: ReadoutEstimator) -> ReadoutEstimator:
    """The Tobit censored at a sampling readout's resolution [1/(2N), 1 - 1/(2N)] instead of
    its binomial fit: the simpler estimator, within 8 % on the simulated agent (docs)."""
    if estimator.name != "binomial-logit-normal":
        raise ValueError(f"{estimator.name!r} is not the fit of a sampling readout")
    return replace(
        estimator,
        name="tobit-resolution",
        reason=f"frequencies of N = {estimator.samples} answers resolve q only to 1/(2N): the "
        f"Tobit censored at {estimator.bound:.4g} / {1 - estimator.bound:.4g}",
    )


def fit_update_model(trials: pd.DataFrame, estimator: ReadoutEstimator | None = None) -> UpdateFit:
    """Fit of the update model to `trials` (normally one model's trials) by the estimator
    their readout calls for (`estimator_for`), or by `estimator` when given.

    The trials are prepared first (`analysis.data.prepare`) and their Bayes shifts taken at the
    simulated agent's clip bounds whatever clip the table's Bayes baseline used: those
    bounds are the logprobs readout's censoring points.
    """
    trials = at_bayes_clip(trials, BAYES_CLIP)
    design, response = design_matrix(trials)
    estimator = estimator or estimator_for(trials.loc[design.index])
    terms = _identifiable(design) if len(design) else []
    nan = float("nan")
    g = int(trials.loc[design.index, "item_id"].nunique())
    # One question leaves the prior weight unidentified (one initial confidence) and no
    # clustered error: the estimates would describe another model, so none are reported.
    note = (
        estimator.reason
        if estimator.name == "none"
        else f"too few trials ({len(design)}) for the {len(terms)} identifiable terms"
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
            estimator.readout,
            estimator.name,
            estimator.reason,
        )
    codes = cluster_codes(trials.loc[design.index, "item_id"])
    result = _fit_engine(estimator, trials.loc[design.index], design, response, terms, codes)
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
        readout=estimator.readout,
        estimator=estimator.name,
        estimator_reason=estimator.reason,
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
