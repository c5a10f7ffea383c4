"""The logistic regression of change of mind on display, advice type and advice accuracy.

logit P(change of mind) = b0 + b_shown [shown] + b_other [other] + b_same [same]
                          + b_opposite [opposite] + b_accuracy * 10 * (a - 0.75)
                          (+ b_answer-wrong, b_in-context: the controls, when run)

per model, fitted on every answered trial, with standard errors clustered by item. The
reference cell is display `hidden` with `neutral` advice, so `display: shown` is the paper's
display coefficient (Gemma 3 12B: -3.4, i.e. seeing its own answer makes a change of mind far
less likely). The paper did not publish its coding; ours is main effects only (no display x
advice interaction, so b_shown is the display effect averaged over advice), accuracy as a
linear term per 10 percentage points centred at 75 %. A term the data cannot identify (no
`other` trials; every trial `shown`) is left out and absent from the table.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import answered
from mindshift.analysis.engines.clustered import (
    MIN_ITEMS,
    cluster_codes,
    interval,
    p_value,
    too_few_items,
)
from mindshift.analysis.engines.logistic import logistic_fit
from mindshift.analysis.measures.registry import (
    HeadlineRow,
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

DISPLAY_TERM: Final = "display: shown"
"""The term whose coefficient is the paper's display coefficient."""
COM_TERMS: Final = (
    "intercept",
    DISPLAY_TERM,
    "display: other",
    "display: answer-wrong",
    "display: in-context",
    "advice: same",
    "advice: opposite",
    "accuracy (per 10 points)",
)
COM_REGRESSION_COLUMNS: Final = (
    "model",
    "term",
    "estimate",
    "se_item",
    "ci_low",
    "ci_high",
    "p_value",
    "odds_ratio",
    "n",
    "n_items",
    "converged",
    "separated",
    "note",
)


def com_design(trials: pd.DataFrame) -> pd.DataFrame:
    """One column per COM_TERMS for `trials` (every row; no term dropped yet)."""
    display = trials["display"].astype(str).to_numpy()
    advice = trials["advice"].astype(str).to_numpy()
    accuracy = trials["accuracy"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "intercept": np.ones(len(trials)),
            DISPLAY_TERM: (display == "shown").astype(np.float64),
            "display: other": (display == "other").astype(np.float64),
            "display: answer-wrong": (display == "answer-wrong").astype(np.float64),
            "display: in-context": (display == "in-context").astype(np.float64),
            "advice: same": (advice == "same").astype(np.float64),
            "advice: opposite": (advice == "opposite").astype(np.float64),
            "accuracy (per 10 points)": 10.0 * (accuracy - 0.75),
        },
        index=trials.index,
    )


def _identifiable(design: pd.DataFrame) -> list[str]:
    kept: list[str] = []
    for term in design.columns:
        if np.linalg.matrix_rank(design[[*kept, term]].to_numpy()) == len(kept) + 1:
            kept.append(term)
    return kept


def _one_model(model: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
    rows = rows.loc[np.isfinite(rows["accuracy"].to_numpy(np.float64))]
    if rows.empty:
        return []
    full = com_design(rows)
    terms = _identifiable(full)
    y = rows["changed_mind"].to_numpy(np.float64)
    if len(rows) <= len(terms):
        return []
    codes = cluster_codes(rows["item_id"])
    g = int(codes.max()) + 1
    if g < MIN_ITEMS:
        # No clustered error, and with one question every trial shares one stage-1 answer:
        # the coefficients would read as effects they are not. Null, with the reason.
        nan = float("nan")
        return [
            {
                "model": model,
                "term": term,
                **dict.fromkeys(("estimate", "se_item", "ci_low", "ci_high", "p_value"), nan),
                "odds_ratio": nan,
                "n": len(rows),
                "n_items": g,
                "converged": False,
                "separated": False,
                "note": too_few_items(g),
            }
            for term in terms
        ]
    result = logistic_fit(full[terms].to_numpy(), y, codes)
    se = result.se_cluster
    df = result.n_clusters - 1
    low, high = interval(result.coef, se, df)
    p = p_value(result.coef, se, df)
    return [
        {
            "model": model,
            "term": term,
            "estimate": float(result.coef[j]),
            "se_item": float(se[j]),
            "ci_low": float(low[j]),
            "ci_high": float(high[j]),
            "p_value": float(p[j]),
            "odds_ratio": float(np.exp(result.coef[j])),
            "n": result.n,
            "n_items": result.n_clusters,
            "converged": result.converged,
            "separated": result.separated,
            "note": "",
        }
        for j, term in enumerate(terms)
    ]


def com_logistic(trials: pd.DataFrame) -> pd.DataFrame:
    """The CoM regression per model: one row per (model, term), COM_REGRESSION_COLUMNS.

    Every answered trial enters, with or without a confidence (choice-only models too).
    """
    rows: list[dict[str, Any]] = []
    data = answered(trials)
    for model, group in data.groupby("model", sort=True):
        rows.extend(_one_model(str(model), group))
    return pd.DataFrame(rows, columns=list(COM_REGRESSION_COLUMNS))


def display_coefficient(table: pd.DataFrame, model: str) -> dict[str, float]:
    """The `display: shown` row of `com_logistic`'s table for one model, or NaNs."""
    row = table.loc[(table["model"] == model) & (table["term"] == DISPLAY_TERM)]
    names = ("estimate", "se_item", "ci_low", "ci_high", "p_value", "odds_ratio")
    if row.empty:
        return {name: float("nan") for name in names}
    return {name: float(row[name].iloc[0]) for name in names}


def _regression_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `com_regression` (per term) and `display_coefficient`."""
    table = results.table("com_regression")
    return {
        "com_regression": {
            str(row["term"]): {
                k: row[k]
                for k in ("estimate", "se_item", "ci_low", "ci_high", "p_value", "odds_ratio")
            }
            for _, row in model_rows(table, model).iterrows()
        },
        "display_coefficient": display_coefficient(table, model)["estimate"],
    }


register(
    Measure(
        key="com_regression",
        title="Logistic regression of change of mind",
        function=com_logistic,
        compute=on_trials(com_logistic),
        caption="logit P(change) on display (reference: hidden), advice (reference: neutral) "
        "and stated accuracy, with item-clustered errors.",
        summary=_regression_entries,
        factorial=True,
        headline=(
            HeadlineRow(
                "display coefficient",
                (("term", DISPLAY_TERM),),
                column="estimate",
                style="estimate",
            ),
        ),
    )
)
