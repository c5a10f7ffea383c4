"""Calibration of the confidence readout: ECE, Brier score, AUROC, NLL and reliability bins.

Metrics, all on the stage-1 answer actually given (sampled) and its confidence c, the
probability of that answer, against whether it is correct:
- ECE: ECE_BINS equal-width bins of c over [0, 1] (the last one closed); the count-weighted
  mean |accuracy - mean confidence| over non-empty bins;
- Brier score: mean (c - correct)^2, the binary Brier score of that same event;
- AUROC: how well c ranks correct above incorrect answers (Mann-Whitney, ties counted half);
- NLL: mean negative log-probability of the correct option (what the temperature minimises).
Each is given on the raw readout and, for a model with a usable temperature, on the scale
temperature scaling puts it on (`analysis.data.temperature`).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mindshift.analysis.data.schema import CALIBRATION, MAIN, model_ids
from mindshift.analysis.data.temperature import (
    PROB_FLOOR,
    SOURCE_SPLIT,
    StageOneMatrix,
    negative_log_likelihood,
    scale_probs,
    split_matrix,
    temperatures,
)
from mindshift.analysis.engines.logodds import FloatArray
from mindshift.analysis.measures.cells import records
from mindshift.analysis.measures.registry import (
    FigureSpec,
    HeadlineRow,
    Measure,
    MeasureResults,
    model_rows,
    register,
)

ECE_BINS: Final = 10
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
        "nll": negative_log_likelihood(logp, matrix.correct_index, temperature) / matrix.n
        if matrix.n
        else nan,
    }


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
            matrix = split_matrix(stage1, model, split)
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
        matrix = split_matrix(stage1, str(row["model"]), split)
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


def _records(table: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in columns} for _, row in table.iterrows()]


def _calibration_entry(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `calibration`: the scale used, the temperature and the metrics."""
    fitted = model_rows(results.table("calibration_temperature"), model)
    metrics = model_rows(results.table("calibration_metrics"), model)
    entry: dict[str, Any] = {
        "confidence_scale": "calibrated" if model in results.chosen else "raw",
        "temperature_applied": results.chosen.get(model, math.nan),
        "metrics": _records(
            metrics,
            ("data", "scale", "n", "accuracy", "mean_confidence", "ece", "brier", "auroc", "nll"),
        ),
    }
    if not fitted.empty:
        row = fitted.iloc[0]
        entry |= {
            "temperature": row["temperature"],
            "temperature_ci": [row["ci_low"], row["ci_high"]],
            "source": row["source"],
            "n": int(row["n"]),
            "usable": bool(row["usable"]),
        }
    return {"calibration": entry}


register(
    Measure(
        key="calibration_temperature",
        title="Temperature scaling",
        function=temperatures,
        compute=lambda data: data.prepared.temperatures,
        caption="Per model, the temperature T fitted to the stage-1 answers (T > 1: the raw "
        "readout was overconfident), its interval and the answers it was fitted on.",
        headline=(
            HeadlineRow("temperature (applied?)", column="temperature", style="temperature"),
        ),
    )
)
register(
    Measure(
        key="calibration_metrics",
        title="Calibration",
        function=calibration_metrics,
        compute=lambda data: calibration_metrics(data.prepared.stage1, data.prepared.temperatures),
        caption="ECE, Brier score, AUROC and NLL of the stage-1 answers, on the raw readout and "
        "after temperature scaling.",
        summary=_calibration_entry,
    )
)
register(
    Measure(
        key="reliability",
        title="Reliability",
        function=reliability_table,
        compute=lambda data: reliability_table(data.prepared.stage1, data.prepared.temperatures),
        caption="Per confidence bin, the share of stage-1 answers that are correct.",
        csv=False,
        figure=FigureSpec(
            "calibration_reliability.png",
            "reliability",
            "Share of stage-1 answers that are correct against the confidence in them, in "
            f"{ECE_BINS} equal-width bins (raw readout and after temperature scaling; ±1.96 "
            "binomial SE). On the diagonal is perfect calibration.",
        ),
    )
)
