"""Cell means: a value averaged within model x factor cells, with its standard errors.

Every measure (CoM rate, confidence change, OUCS) is a mean of a per-trial value over cells of
the design, so they share this one implementation and one tidy output shape:
columns `model, *by, n, n_items, mean, sem, se_item, ci_low, ci_high`, rows in the canonical
level order. `se_item` is clustered by item and the 95 % interval uses it with t(G - 1)
(`analysis.engines.clustered`); `sem` treats trials as independent (the paper's convention),
kept for comparison only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.schema import (
    ADVICE_KINDS,
    ADVICE_TYPES,
    DISPLAYS,
    accuracy_key,
    canonical_order,
)
from mindshift.analysis.engines.clustered import clustered_mean_se, interval, n_clusters
from mindshift.analysis.errors import AnalysisInputError

CELL_COLUMNS: Final = ("n", "n_items", "mean", "sem", "se_item", "ci_low", "ci_high")

_CANONICAL: Final[dict[str, tuple[str, ...]]] = {"display": DISPLAYS, "advice": ADVICE_TYPES}


def _stats(values: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """A cell's statistics but its interval (computed for all cells at once, in cell_stats)."""
    n = values.size
    # Codes are global to the table; re-densify so the cell's bincounts stay small.
    codes = np.unique(clusters, return_inverse=True)[1].astype(np.int64)
    g = n_clusters(codes)
    return {
        "n": float(n),
        "n_items": float(g),
        "mean": float(values.mean()) if n else float("nan"),
        "sem": float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "se_item": clustered_mean_se(values, codes),
    }


def cell_stats(
    table: pd.DataFrame,
    values: pd.Series,
    by: Sequence[str],
    *,
    cluster: str = "item_id",
) -> pd.DataFrame:
    """Mean, count and standard errors of `values` (aligned with `table`) per model x `by` cell.

    Non-finite values are left out of their cell (unknown confidences). Cells without a single
    finite value are absent from the result rather than present with n = 0.
    """
    keys = ["model", *by]
    columns = [*keys, *CELL_COLUMNS]
    absent = [key for key in keys if key not in table.columns]
    if absent:
        raise AnalysisInputError(absent_columns(absent))
    finite = np.isfinite(values.to_numpy(dtype=np.float64))
    codes = pd.factorize(table[cluster])[0]
    data = table.loc[finite, keys].assign(
        _value=values.to_numpy(np.float64)[finite], _cluster=codes[finite]
    )
    if data.empty:
        return pd.DataFrame(columns=columns)
    rows: list[dict[str, Any]] = []
    value = data["_value"].to_numpy()
    cluster_of = data["_cluster"].to_numpy()
    # Row positions per cell, not a sub-DataFrame per cell: with hundreds of models there are
    # thousands of cells, and building their frames took most of the time. The rows come in
    # table order either way, so every number is the same.
    for cell, positions in data.groupby(keys, sort=False).indices.items():
        levels = cell if isinstance(cell, tuple) else (cell,)
        stats = _stats(value[positions], cluster_of[positions])
        rows.append({**dict(zip(keys, levels, strict=True)), **stats})
    out = pd.DataFrame(rows, columns=columns)
    # One vectorised t quantile for every cell (scipy's per-call overhead dominated).
    low, high = interval(
        out["mean"].to_numpy(np.float64),
        out["se_item"].to_numpy(np.float64),
        out["n_items"].to_numpy(np.float64) - 1,
    )
    out["ci_low"], out["ci_high"] = low, high
    out[["n", "n_items"]] = out[["n", "n_items"]].astype(np.int64)
    return sort_cells(out, keys)


def absent_columns(names: Sequence[str]) -> str:
    """Why a measure cannot group these trials: the columns they lack, and whose they are."""
    message = f"these trials have no column {', '.join(repr(n) for n in names)}"
    if any(name in ADVICE_KINDS for name in names):
        message += (
            ": it is one of the advice protocols' columns (paradigms.columns.AdviceColumns), "
            "which measures of the display x advice x accuracy design need; a protocol that "
            "declares none has no such design (its trials are measured by condition and turn)"
        )
    return message


def sort_cells(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Rows ordered by model, then displays and advice types canonically, numbers ascending."""
    ranks: dict[str, pd.Series] = {}
    for key in keys:
        if key in _CANONICAL:
            order = canonical_order(table[key], _CANONICAL[key])
            ranks[f"_rank_{key}"] = table[key].map({level: i for i, level in enumerate(order)})
        else:
            ranks[f"_rank_{key}"] = table[key]
    ordered = table.assign(**ranks).sort_values(list(ranks), kind="stable")
    return ordered.drop(columns=list(ranks)).reset_index(drop=True)


def nest(table: pd.DataFrame, keys: Sequence[str], value: str = "mean") -> dict[str, Any]:
    """{level1: {level2: ... value}} from a tidy table, in the table's row order.

    Accuracy levels become keys such as "0.70" (JSON keys are strings).
    """
    nested: dict[str, Any] = {}
    for _, row in table.iterrows():
        node = nested
        for key in keys[:-1]:
            node = node.setdefault(_key(row[key], key), {})
        node[_key(row[keys[-1]], keys[-1])] = float(row[value])
    return nested


def _key(level: Any, factor: str) -> str:
    return accuracy_key(float(level)) if factor == "accuracy" else str(level)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `table` as dicts keyed by column name (untyped values, for iteration)."""
    return [{str(key): value for key, value in row.items()} for row in table.to_dict("records")]
