"""Switching curves: change of mind under opposite advice against initial confidence.

For each model x display x stated accuracy a, over the opposite-advice trials with a known
initial confidence c, two curves of P(switch | c) are fitted to the trials:
- a sigmoid, P = 1 / (1 + exp(k (c - c0))): a logistic regression of the switch on c, so
  c0 (the inflection, where P = 1/2) = -b0 / b1 and the slope at the inflection is b1 / 4;
- a line, P = alpha + beta c, by least squares.
Their R^2 is computed, as the paper's (0.96 against 0.69) must have been, on binned means:
BINS quantile bins of c, R^2 = 1 - sum_b n_b (y_b - f_b)^2 / sum_b n_b (y_b - ybar)^2 with
y_b the bin's switch rate and f_b the mean of the curve's predictions over the bin's trials.
The normative observer switches iff a > c (docs/paradigm.md §4): a step at c = a (a clipped like
every accuracy), against which the fitted inflection is read. The paper (hidden display)
finds inflections at 0.77 / 0.92 / 0.96 for a = 0.5 / 0.6 / 0.7.
Two-option trials only: with K options the ideal observer's switching depends on the advised
option's own probability too, so no single threshold in c exists to read a curve against.
"""

from __future__ import annotations

from typing import Any, Final, cast

import numpy as np
import pandas as pd
from scipy import special

from mindshift.analysis.data.prepare import answered
from mindshift.analysis.data.schema import ADVICE_TYPES
from mindshift.analysis.engines.clustered import cluster_codes, interval
from mindshift.analysis.engines.logistic import logistic_fit
from mindshift.analysis.engines.logodds import clip
from mindshift.analysis.measures.cells import sort_cells
from mindshift.analysis.measures.registry import (
    FigureSpec,
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

BINS: Final = 10
"""Quantile bins of initial confidence for the binned means and their R^2."""
MIN_TRIALS: Final = 20
"""Fewer opposite-advice trials than this in a cell: no curve is fitted (NaN)."""
SWITCHING_COLUMNS: Final = (
    "model",
    "display",
    "accuracy",
    "n",
    "n_items",
    "switch_rate",
    "normative_inflection",
    "inflection",
    "inflection_ci_low",
    "inflection_ci_high",
    "sigmoid_slope",
    "sigmoid_r2",
    "linear_intercept",
    "linear_slope",
    "linear_r2",
    "separated",
)


def switching_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Answered two-option opposite-advice trials with a known initial confidence."""
    rows = answered(trials)
    keep = (
        rows["advice"].eq(ADVICE_TYPES[1]).to_numpy(bool)
        & rows["n_options"].eq(2).to_numpy(bool)
        & np.isfinite(rows["initial_confidence"].to_numpy(np.float64))
    )
    return rows.loc[pd.Series(keep, index=rows.index)]


def confidence_bins(confidence: pd.Series, bins: int = BINS) -> pd.Series:
    """Quantile-bin codes of `confidence` (fewer bins where values repeat)."""
    n_bins = max(1, min(bins, int(confidence.nunique())))
    codes = pd.qcut(confidence.rank(method="first"), n_bins, labels=False)
    return pd.Series(np.asarray(codes, dtype=np.int64), index=confidence.index, dtype=np.int64)


def binned_switching(trials: pd.DataFrame, bins: int = BINS) -> pd.DataFrame:
    """Binned switch rates: model, display, accuracy, bin, n, confidence (mean), switch_rate."""
    rows = switching_trials(trials)
    columns = ["model", "display", "accuracy", "bin", "n", "confidence", "switch_rate"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    parts: list[pd.DataFrame] = []
    for (model, display, accuracy), cell in rows.groupby(["model", "display", "accuracy"]):
        codes = confidence_bins(cell["initial_confidence"], bins)
        grouped = cell.assign(_bin=codes).groupby("_bin")
        parts.append(
            pd.DataFrame(
                {
                    "model": model,
                    "display": display,
                    "accuracy": accuracy,
                    "bin": grouped.size().index.to_numpy(),
                    "n": grouped.size().to_numpy(),
                    "confidence": grouped["initial_confidence"].mean().to_numpy(),
                    "switch_rate": grouped["changed_mind"].mean().to_numpy(dtype=np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]


def binned_r2(y: np.ndarray, fitted: np.ndarray, codes: np.ndarray) -> float:
    """Count-weighted R^2 of bin means of `y` against bin means of `fitted` (see module doc)."""
    counts = np.bincount(codes).astype(np.float64)
    present = counts > 0
    y_bin = np.bincount(codes, weights=y)[present] / counts[present]
    f_bin = np.bincount(codes, weights=fitted)[present] / counts[present]
    weights = counts[present]
    total = float(np.sum(weights * (y_bin - np.average(y_bin, weights=weights)) ** 2))
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum(weights * (y_bin - f_bin) ** 2)) / total


def _curve(cell: pd.DataFrame, bins: int) -> dict[str, Any]:
    c = cell["initial_confidence"].to_numpy(np.float64)
    y = cell["changed_mind"].to_numpy(np.float64)
    nan = float("nan")
    out: dict[str, Any] = {
        "n": int(c.size),
        "n_items": int(cell["item_id"].nunique()),
        "switch_rate": float(y.mean()) if y.size else nan,
    }
    out |= dict.fromkeys(SWITCHING_COLUMNS[7:-1], nan) | {"separated": False}
    if c.size < MIN_TRIALS or np.ptp(c) == 0.0:
        return out
    x = np.column_stack([np.ones_like(c), c])
    codes = confidence_bins(cell["initial_confidence"], bins).to_numpy()
    if y.min() == y.max():
        # Everyone switches, or no one: the sigmoid has no finite inflection.
        out["separated"] = True
    else:
        fit = logistic_fit(x, y, cluster_codes(cell["item_id"]))
        b0, b1 = map(float, fit.coef)
        inflection = -b0 / b1 if b1 != 0.0 else nan
        # Delta method for c0 = -b0/b1: gradient (-1/b1, b0/b1^2).
        grad = np.array([-1.0 / b1, b0 / b1**2]) if b1 != 0.0 else np.full(2, nan)
        se = float(np.sqrt(max(grad @ fit.cov_cluster @ grad, 0.0)))
        low, high = interval(inflection, se, fit.n_clusters - 1)
        out |= {
            "inflection": inflection,
            "inflection_ci_low": float(low),
            "inflection_ci_high": float(high),
            "sigmoid_slope": b1 / 4.0,
            "sigmoid_r2": binned_r2(y, special.expit(x @ fit.coef), codes),
            "separated": fit.separated,
        }
    line, *_ = np.linalg.lstsq(x, y, rcond=None)
    out |= {
        "linear_intercept": float(line[0]),
        "linear_slope": float(line[1]),
        "linear_r2": binned_r2(y, x @ line, codes),
    }
    return out


def switching_curves(trials: pd.DataFrame, bins: int = BINS) -> pd.DataFrame:
    """Sigmoid and linear fits of switching on initial confidence (SWITCHING_COLUMNS).

    One row per model x display x stated accuracy with opposite-advice trials; `inflection`
    is in confidence units (NaN when the curve cannot be fitted); `normative_inflection` is
    the clipped accuracy a, where the ideal observer starts switching.
    """
    rows = switching_trials(trials)
    records: list[dict[str, Any]] = []
    for (model, display, accuracy), cell in rows.groupby(["model", "display", "accuracy"]):
        a = float(cast(float, accuracy))
        record = {"model": model, "display": display, "accuracy": a}
        record |= _curve(cell, bins)
        record["normative_inflection"] = float(clip(a))
        records.append(record)
    table = pd.DataFrame(records, columns=list(SWITCHING_COLUMNS))
    return sort_cells(table, ("model", "display", "accuracy"))


def _switching_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `switching`: the fitted curves, a record per display and accuracy."""
    rows = model_rows(results.table("switching"), model)
    columns = (
        "display",
        "accuracy",
        "n",
        "switch_rate",
        "normative_inflection",
        "inflection",
        "inflection_ci_low",
        "inflection_ci_high",
        "sigmoid_slope",
        "sigmoid_r2",
        "linear_slope",
        "linear_r2",
    )
    return {"switching": [{name: row[name] for name in columns} for _, row in rows.iterrows()]}


register(
    Measure(
        key="switching",
        title="Switching curves",
        function=switching_curves,
        compute=on_trials(switching_curves),
        caption="Under opposite advice, per stated accuracy: a sigmoid and a line of change of "
        "mind against initial confidence, with the inflection the ideal observer puts at c = a.",
        summary=_switching_entries,
        factorial=True,
        figure=FigureSpec(
            "switching_vs_confidence.png",
            "switching",
            "Change of mind under opposite advice against initial confidence: binned rates, the "
            "fitted sigmoid (solid) and line (dotted); the ideal observer switches iff a > c "
            "(dashed line at c = a).",
            cites=(switching_curves, binned_switching),
        ),
    )
)
register(
    Measure(
        key="switching_bins",
        title="Switching by confidence bin",
        function=binned_switching,
        compute=on_trials(binned_switching),
        caption="Under opposite advice, the change-of-mind rate per bin of initial confidence.",
        csv=False,
        factorial=True,
    )
)
