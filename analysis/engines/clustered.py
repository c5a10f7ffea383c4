"""Cluster-robust inference: every question (item) recurs in every condition and repeat.

The trials of one item share the item's difficulty and the model's one stage-1 answer, so they
are not independent; standard errors that treat them as independent (the paper's SEM across
trials) are too small. Every standard error and interval of the analysis is therefore
clustered by item, with the same small-sample conventions throughout:

- means: CR1, se = sqrt(G / (G - 1) * sum_g (sum_{i in g} (y_i - ybar))^2) / n;
- maximum-likelihood fits (logistic, Tobit): the sandwich I^-1 M I^-1 with
  M = G / (G - 1) * sum_g s_g s_g', s_g the sum of the item's per-trial score vectors and I
  the observed information (Stata's `vce(cluster)` for ML estimators);
- intervals and tests use Student's t with G - 1 degrees of freedom, which is conservative
  when there are few items and equals the normal for many.
G is the number of distinct items (clusters); with fewer than 2 the errors are NaN.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mindshift.analysis.engines.logodds import FloatArray

LEVEL: Final = 0.95
"""Coverage of every interval the analysis reports."""
MIN_ITEMS: Final = 2
"""Fewest questions (clusters) for an item-clustered error, and for a fit whose errors are
clustered by item: below it the analysis reports null (the report "—") and says why."""


def too_few_items(n_items: int) -> str:
    """The reason, in words, a fit or interval over `n_items` questions is not reported."""
    return (
        f"too few questions ({n_items}; item-clustered errors and this fit need at least "
        f"{MIN_ITEMS})"
    )


def cluster_codes(labels: npt.ArrayLike | pd.Series) -> npt.NDArray[np.int64]:
    """Dense integer codes 0..G-1 of cluster labels (item ids), for bincount-based sums."""
    codes = pd.factorize(pd.Series(labels) if not isinstance(labels, pd.Series) else labels)[0]
    return np.asarray(codes, dtype=np.int64)


def n_clusters(codes: npt.NDArray[np.int64]) -> int:
    """How many distinct clusters the codes name."""
    return int(np.count_nonzero(np.bincount(codes))) if codes.size else 0


def clustered_mean_se(values: npt.ArrayLike, codes: npt.NDArray[np.int64]) -> float:
    """CR1 standard error of the mean of `values`, clustering on `codes`."""
    y = np.asarray(values, dtype=np.float64)
    g = n_clusters(codes)
    if y.size < 2 or g < 2:
        return float("nan")
    sums = np.bincount(codes, weights=y - y.mean())
    return float(np.sqrt(g / (g - 1) * np.sum(sums**2)) / y.size)


def cluster_meat(scores: FloatArray, codes: npt.NDArray[np.int64]) -> FloatArray:
    """sum_g s_g s_g' with s_g the per-cluster sums of the rows of `scores` (n x k)."""
    g = int(codes.max()) + 1 if codes.size else 0
    # One bincount per column: an order of magnitude faster than np.add.at on large inputs.
    sums = np.column_stack(
        [np.bincount(codes, weights=scores[:, j], minlength=g) for j in range(scores.shape[1])]
    )
    return np.asarray(sums.T @ sums, dtype=np.float64)


def sandwich(
    information: FloatArray, scores: FloatArray, codes: npt.NDArray[np.int64]
) -> FloatArray:
    """Cluster-robust covariance I^-1 (G/(G-1) sum_g s_g s_g') I^-1 of an ML estimate.

    `information` is the observed information (the Hessian of the negative log-likelihood)
    at the estimate; `scores` the per-observation gradients of the log-likelihood (n x k).
    NaN when there are fewer than 2 clusters or the information is singular.
    """
    k = information.shape[0]
    g = n_clusters(codes)
    if g < 2:
        return np.full((k, k), np.nan)
    try:
        bread = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan)
    meat = cluster_meat(scores, codes) * g / (g - 1)
    cov = bread @ meat @ bread
    return np.asarray((cov + cov.T) / 2.0, dtype=np.float64)


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided critical value of Student's t (NaN when df < 1)."""
    if not np.isfinite(df) or df < 1:
        return float("nan")
    return float(stats.t.ppf(0.5 + level / 2.0, df))


def interval(
    estimate: npt.ArrayLike, se: npt.ArrayLike, df: npt.ArrayLike, level: float = LEVEL
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds estimate -/+ t_{df} * se (element-wise; NaN where df < 1)."""
    est = np.asarray(estimate, dtype=np.float64)
    spread = np.asarray(se, dtype=np.float64)
    dof = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        crit = np.where(dof >= 1, stats.t.ppf(0.5 + level / 2.0, np.maximum(dof, 1.0)), np.nan)
    return (
        np.asarray(est - crit * spread, dtype=np.float64),
        np.asarray(est + crit * spread, dtype=np.float64),
    )


def p_value(estimate: npt.ArrayLike, se: npt.ArrayLike, df: npt.ArrayLike) -> FloatArray:
    """Two-sided p-value of estimate / se against Student's t with `df` degrees of freedom."""
    est = np.asarray(estimate, dtype=np.float64)
    spread = np.asarray(se, dtype=np.float64)
    dof = np.asarray(df, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / spread
        p = 2.0 * stats.t.sf(np.abs(t), np.maximum(dof, 1.0))
    return np.asarray(np.where(dof >= 1, p, np.nan), dtype=np.float64)
