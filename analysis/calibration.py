"""Calibration of the confidence readout: temperature scaling, ECE, Brier score, AUROC.

Temperature scaling (Guo et al. 2017) divides the option logits by one positive number T per
model, fitted by maximum likelihood of the correct option: with p the read-out option
probabilities, calibrated p'_k = softmax(log p / T)_k; for two options
logit(p') = logit(p) / T. T > 1 means the raw readout was overconfident (Gemma 3 12B in the
paper: T = 3.3). The logit here is the unclipped one: the clip bounds belong to the update
analysis, not to the readout.

What it is fitted on: the model's calibration split (held-out items asked at stage 1 only,
`[paradigm] calibration_items`); a model without one falls back on its main items' stage-1
answers, which is in-sample (the same answers then enter the measures) and is said so wherever
the temperature is shown. Fewer than MIN_CALIBRATION usable answers, or a temperature at a
bound of T_BOUNDS (the data cannot pin it down, e.g. every answer correct), give no usable
temperature.

Which confidence is scaled (`prior` mode of the analysis):
- "raw": none; the read-out probabilities as they are.
- "calibrated": every model with a usable temperature (split or fallback).
- "auto" (the default): the models that have a calibration split; the others stay raw.
The temperature is applied to *both* readouts of a trial, the initial confidence and the final
probability of the initial choice: the Bayes prior is the calibrated turn-1 confidence, and a
final confidence on another scale would make every confidence change, OUCS and overweighting
ratio mix the two scales (a model that repeats its own readout would appear to update).
Two-option trials only: with more options the trials table keeps only the chosen option's
probability, not the full distribution the scaling needs, and those trials stay raw.

Metrics, all on the stage-1 answer actually given (sampled) and its confidence c, the
probability of that answer, against whether it is correct:
- ECE: ECE_BINS equal-width bins of c over [0, 1] (the last one closed); the count-weighted
  mean |accuracy - mean confidence| over non-empty bins;
- Brier score: mean (c - correct)^2, the binary Brier score of that same event;
- AUROC: how well c ranks correct above incorrect answers (Mann-Whitney, ties counted half);
- NLL: mean negative log-probability of the correct option (what the temperature minimises).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special, stats

from analysis.cells import records
from analysis.clustered import LEVEL
from analysis.errors import AnalysisInputError
from analysis.logodds import FloatArray
from analysis.schema import CALIBRATION, MAIN, model_ids

Prior = Literal["auto", "raw", "calibrated"]
PRIOR_MODES: Final[tuple[Prior, ...]] = ("auto", "raw", "calibrated")
ECE_BINS: Final = 10
MIN_CALIBRATION: Final = 20
"""Fewest usable stage-1 answers a temperature is fitted on."""
T_BOUNDS: Final = (0.05, 100.0)
"""The temperature is searched in this range; an optimum at either end is not usable."""
PROB_FLOOR: Final = 1e-12
"""A read-out probability of exactly 0 (an underflow) is taken as this before its log, so one
such readout cannot make the likelihood infinite."""

SOURCE_SPLIT: Final = "calibration split"
SOURCE_MAIN: Final = "main items (no calibration split; in-sample)"

TEMPERATURE_COLUMNS: Final = (
    "model",
    "source",
    "n",
    "temperature",
    "ci_low",
    "ci_high",
    "nll_raw",
    "nll_calibrated",
    "usable",
)
METRIC_COLUMNS: Final = (
    "model",
    "data",
    "scale",
    "n",
    "accuracy",
    "mean_confidence",
    "ece",
    "brier",
    "auroc",
    "nll",
)


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature with its interval (profile of the likelihood in log T)."""

    temperature: float
    ci_low: float
    ci_high: float
    n: int
    nll_raw: float
    """Mean negative log-likelihood of the correct option before scaling (T = 1)."""
    nll_calibrated: float
    at_bound: bool


@dataclass(frozen=True)
class StageOneMatrix:
    """Usable stage-1 answers of one model as arrays: probabilities (n x K) and indices."""

    probs: FloatArray
    correct_index: npt.NDArray[np.int64]
    choice_index: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.correct_index.size)


def stage1_matrix(stage1: pd.DataFrame) -> StageOneMatrix:
    """The rows of a stage-1 table with known probabilities and indices, as arrays.

    Rows whose number of options differs from the most common one are left out (one model
    answers one kind of question; a mixture has no single softmax).
    """
    known = stage1["probs"].notna() & stage1["correct_index"].ge(0) & stage1["choice_index"].ge(0)
    rows = stage1.loc[known]
    if rows.empty:
        return StageOneMatrix(np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64))
    sizes = rows["probs"].map(len)
    rows = rows.loc[sizes == sizes.mode().iloc[0]]
    probs = np.asarray(np.stack(rows["probs"].map(np.asarray).to_list()), dtype=np.float64)
    return StageOneMatrix(
        probs=probs,
        correct_index=rows["correct_index"].to_numpy(np.int64),
        choice_index=rows["choice_index"].to_numpy(np.int64),
    )


def scale_probs(probs: npt.ArrayLike, temperature: float) -> FloatArray:
    """softmax(log p / T) row-wise: temperature-scaled option probabilities."""
    logp = np.log(np.maximum(np.asarray(probs, dtype=np.float64), PROB_FLOOR)) / temperature
    return np.asarray(special.softmax(logp, axis=-1), dtype=np.float64)


def scale_binary(p: npt.ArrayLike, temperature: float) -> FloatArray:
    """For two options: expit(logit(p) / T), with the unclipped logit (NaN stays NaN)."""
    q = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logodds = np.log(q) - np.log1p(-q)
    return np.asarray(special.expit(logodds / temperature), dtype=np.float64)


def _nll(logp: FloatArray, correct: npt.NDArray[np.int64], temperature: float) -> float:
    """Total negative log-likelihood of the correct options at temperature T."""
    z = logp / temperature
    picked = z[np.arange(z.shape[0]), correct]
    return float(np.sum(special.logsumexp(z, axis=1) - picked))


def fit_temperature(matrix: StageOneMatrix) -> TemperatureFit:
    """Maximum-likelihood temperature for the answers in `matrix` (NaN when n < 2)."""
    n = matrix.n
    nan = float("nan")
    if n < 2:
        return TemperatureFit(nan, nan, nan, n, nan, nan, False)
    logp = np.log(np.maximum(matrix.probs, PROB_FLOOR))
    correct = matrix.correct_index
    low, high = math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])
    result = optimize.minimize_scalar(
        lambda u: _nll(logp, correct, math.exp(u)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-7},
    )
    u = float(result.x)
    at_bound = min(u - low, high - u) < 1e-3
    # Interval from the curvature of the total NLL in log T (answers independent).
    h = 1e-3
    curvature = (
        _nll(logp, correct, math.exp(u + h))
        - 2.0 * _nll(logp, correct, math.exp(u))
        + _nll(logp, correct, math.exp(u - h))
    ) / h**2
    z = float(stats.norm.ppf(0.5 + LEVEL / 2.0))
    spread = z / math.sqrt(curvature) if curvature > 0 else math.inf
    # A nearly flat likelihood (a handful of answers) gives a spread past exp's range: the
    # interval is then (0, inf) rather than an OverflowError.
    with np.errstate(over="ignore"):
        ci_high = float(np.exp(u + spread))
    return TemperatureFit(
        temperature=math.exp(u),
        ci_low=float(np.exp(u - spread)),
        ci_high=ci_high,
        n=n,
        nll_raw=_nll(logp, correct, 1.0) / n,
        nll_calibrated=_nll(logp, correct, math.exp(u)) / n,
        at_bound=at_bound,
    )


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """ECE over `bins` equal-width bins of [0, 1] (see the module doc); NaN when empty."""
    table = reliability_bins(confidence, correct, bins)
    if table.empty:
        return float("nan")
    gap = (table["accuracy"] - table["confidence"]).abs()
    return float(np.sum(table["n"] * gap) / table["n"].sum())


def reliability_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = ECE_BINS
) -> pd.DataFrame:
    """Per non-empty bin of [0, 1]: low, high, n, mean confidence, accuracy, its binomial SE."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    keep = np.isfinite(c)
    c, y = c[keep], y[keep]
    columns = ["bin", "low", "high", "n", "confidence", "accuracy", "se"]
    if c.size == 0:
        return pd.DataFrame(columns=columns)
    index = np.minimum((np.clip(c, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    present = np.flatnonzero(counts)
    n = counts[present].astype(np.float64)
    accuracy = np.bincount(index, weights=y, minlength=bins)[present] / n
    return pd.DataFrame(
        {
            "bin": present,
            "low": present / bins,
            "high": (present + 1) / bins,
            "n": counts[present],
            "confidence": np.bincount(index, weights=c, minlength=bins)[present] / n,
            "accuracy": accuracy,
            "se": np.sqrt(accuracy * (1.0 - accuracy) / n),
        },
        columns=columns,
    )


def brier_score(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """Mean squared difference between the confidence and the 0/1 correctness."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    keep = np.isfinite(c)
    return float(np.mean((c[keep] - y[keep]) ** 2)) if keep.any() else float("nan")


def auroc(score: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Area under the ROC curve of `score` for the 0/1 `label` (NaN if a class is empty)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label, dtype=bool)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = stats.rankdata(s)  # average ranks: a tie counts one half
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _answer_arrays(matrix: StageOneMatrix, temperature: float) -> tuple[FloatArray, FloatArray]:
    probs = matrix.probs if temperature == 1.0 else scale_probs(matrix.probs, temperature)
    rows = np.arange(matrix.n)
    confidence = probs[rows, matrix.choice_index]
    correct = (matrix.choice_index == matrix.correct_index).astype(np.float64)
    return confidence, correct


def answer_metrics(matrix: StageOneMatrix, temperature: float = 1.0) -> dict[str, float]:
    """n, accuracy, mean confidence, ECE, Brier, AUROC and NLL of answers at temperature T."""
    confidence, correct = _answer_arrays(matrix, temperature)
    logp = np.log(np.maximum(matrix.probs, PROB_FLOOR))
    nan = float("nan")
    return {
        "n": float(matrix.n),
        "accuracy": float(correct.mean()) if matrix.n else nan,
        "mean_confidence": float(confidence.mean()) if matrix.n else nan,
        "ece": expected_calibration_error(confidence, correct),
        "brier": brier_score(confidence, correct),
        "auroc": auroc(confidence, correct),
        "nll": _nll(logp, matrix.correct_index, temperature) / matrix.n if matrix.n else nan,
    }


def _split(stage1: pd.DataFrame, model: str, split: str) -> StageOneMatrix:
    return stage1_matrix(stage1.loc[(stage1["model"] == model) & (stage1["split"] == split)])


def temperatures(stage1: pd.DataFrame) -> pd.DataFrame:
    """Per model: the fitted temperature and where it comes from (TEMPERATURE_COLUMNS)."""
    rows: list[dict[str, Any]] = []
    for model in model_ids(stage1):
        source, matrix = SOURCE_SPLIT, _split(stage1, model, CALIBRATION)
        if matrix.n < MIN_CALIBRATION:
            source, matrix = SOURCE_MAIN, _split(stage1, model, MAIN)
        fit = fit_temperature(matrix)
        usable = matrix.n >= MIN_CALIBRATION and not fit.at_bound and math.isfinite(fit.ci_high)
        rows.append(
            {
                "model": model,
                "source": source,
                "n": matrix.n,
                "temperature": fit.temperature,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "nll_raw": fit.nll_raw,
                "nll_calibrated": fit.nll_calibrated,
                "usable": bool(usable),
            }
        )
    table = pd.DataFrame(rows, columns=list(TEMPERATURE_COLUMNS))
    table["n"] = table["n"].astype(np.int64)
    return table


def chosen_temperatures(table: pd.DataFrame, prior: Prior) -> dict[str, float]:
    """The temperature applied per model under the `prior` mode (models absent stay raw)."""
    if prior not in PRIOR_MODES:
        raise AnalysisInputError(f"unknown prior {prior!r} (known: {', '.join(PRIOR_MODES)})")
    if prior == "raw":
        return {}
    chosen = table.loc[table["usable"]]
    if prior == "auto":
        chosen = chosen.loc[chosen["source"] == SOURCE_SPLIT]
    return {str(row["model"]): float(row["temperature"]) for row in records(chosen)}


def calibration_metrics(stage1: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """ECE, Brier, AUROC, NLL per model x data (split, main items) x scale (METRIC_COLUMNS).

    The calibrated rows use the model's fitted temperature (when usable), so the main-item
    rows of a model with a calibration split are an out-of-sample check of the scaling.
    """
    fitted = {str(row["model"]): row for row in records(table)}
    rows: list[dict[str, Any]] = []
    for model in model_ids(stage1):
        fit = fitted.get(model)
        for split, label in ((CALIBRATION, SOURCE_SPLIT), (MAIN, "main items")):
            matrix = _split(stage1, model, split)
            if matrix.n == 0:
                continue
            scales: list[tuple[str, float]] = [("raw", 1.0)]
            if fit is not None and bool(fit["usable"]):
                scales.append(("calibrated", float(fit["temperature"])))
            for scale, temperature in scales:
                metrics = answer_metrics(matrix, temperature)
                rows.append({"model": model, "data": label, "scale": scale, **metrics})
    out = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    out["n"] = out["n"].astype(np.int64)
    return out


def reliability_table(stage1: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Reliability-diagram bins per model x scale, on the data each temperature was fitted on."""
    parts: list[pd.DataFrame] = []
    for row in records(table):
        split = CALIBRATION if row["source"] == SOURCE_SPLIT else MAIN
        matrix = _split(stage1, str(row["model"]), split)
        scales = [("raw", 1.0)]
        if bool(row["usable"]):
            scales.append(("calibrated", float(row["temperature"])))
        for scale, temperature in scales:
            confidence, correct = _answer_arrays(matrix, temperature)
            bins = reliability_bins(confidence, correct)
            parts.append(bins.assign(model=str(row["model"]), scale=scale, data=str(row["source"])))
    columns = ["model", "scale", "data", "bin", "low", "high", "n", "confidence", "accuracy"]
    if not parts:
        return pd.DataFrame(columns=[*columns, "se"])
    return pd.concat(parts, ignore_index=True)[[*columns, "se"]]


def apply_calibration(trials: pd.DataFrame, chosen: Mapping[str, float]) -> pd.DataFrame:
    """`trials` with both confidences of two-option trials scaled by the model's temperature.

    The read-out values are kept in `initial_confidence_raw` and `final_prob_initial_raw`;
    a model without a temperature in `chosen` keeps its raw values.
    """
    out = trials.assign(
        initial_confidence_raw=trials["initial_confidence"],
        final_prob_initial_raw=trials["final_prob_initial"],
    )
    if not chosen:
        return out
    initial = out["initial_confidence"].to_numpy(np.float64).copy()
    final = out["final_prob_initial"].to_numpy(np.float64).copy()
    models = out["model"].to_numpy()
    binary = out["n_options"].to_numpy() == 2
    for model, temperature in chosen.items():
        rows = (models == model) & binary
        initial[rows] = scale_binary(initial[rows], temperature)
        final[rows] = scale_binary(final[rows], temperature)
    return out.assign(initial_confidence=initial, final_prob_initial=final)
