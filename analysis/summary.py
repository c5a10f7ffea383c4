"""summary.json: every measure per model, as one JSON-ready dict (the contract in DESIGN.md).

The contract keys (n_trials, accuracy_initial, com_rate, com_rate_by_advice,
confidence_change, oucs, overweighting, fit) are always present for every model; cells of
displays or advice types absent from the data are absent, and a number that cannot be
computed is null. Everything else is an extra, free to grow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.accuracy import initial_accuracy_table
from analysis.bayes import with_bayes
from analysis.cells import nest
from analysis.change_of_mind import answered, com_rates
from analysis.confidence_change import confidence_change
from analysis.fit import fit_by_model, fit_update_model
from analysis.logodds import CLIP_HIGH, CLIP_LOW
from analysis.oucs import oucs
from analysis.overweighting import (
    POOLED,
    RATIO_ADVICE,
    choice_support_correction,
    overweighting,
)
from analysis.schema import validate_trials

_RATIO_STATS: Final = (
    "n",
    "mean_ratio",
    "median_ratio",
    "ratio_of_sums",
    "mean_update",
    "mean_bayes_update",
)


def json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None and numpy scalars as Python ones.

    json.dumps would otherwise write NaN, which is not JSON and breaks strict readers.
    """
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _of(table: pd.DataFrame, model: str) -> pd.DataFrame:
    return table.loc[table["model"] == model]


def _lookup(table: pd.DataFrame, model: str, column: str, missing: Any) -> Any:
    return table.at[model, column] if model in table.index else missing


def _overweighting_entry(table: pd.DataFrame, correction: float) -> dict[str, Any]:
    def stats(row: pd.Series) -> dict[str, Any]:
        return {name: row[name] for name in _RATIO_STATS}

    pooled = table.loc[table["display"] == POOLED]
    by_display: dict[str, dict[str, Any]] = {}
    for _, row in table.loc[table["display"] != POOLED].iterrows():
        by_display.setdefault(str(row["display"]), {})[str(row["advice"])] = stats(row)
    return {
        "headline": {
            advice: float(pooled.loc[pooled["advice"] == advice, "ratio_of_sums"].iloc[0])
            if (pooled["advice"] == advice).any()
            else math.nan
            for advice in RATIO_ADVICE
        },
        "detail": {
            "choice_support_correction": correction,
            "pooled_displays": POOLED,
            "pooled": {str(row["advice"]): stats(row) for _, row in pooled.iterrows()},
            "by_display": by_display,
        },
    }


def summarise(trials: pd.DataFrame, stage1: pd.DataFrame | None = None) -> dict[str, Any]:
    """The summary.json content for a trials table (and the run's stage-1 calls).

    Without `stage1` (a run with no calls.jsonl) initial accuracy is computed from the
    stage-1 answers recorded in the trials table, and the summary says so
    (`accuracy_initial_source`; see `initial_accuracy_table`).
    """
    trials = with_bayes(validate_trials(trials))
    accuracy = initial_accuracy_table(trials, stage1)
    tables = {
        "com": com_rates(trials, ("display",)),
        "com_advice": com_rates(trials, ("display", "advice")),
        "com_accuracy": com_rates(trials, ("display", "advice", "accuracy")),
        "change": confidence_change(trials, ("display", "advice")),
        "change_accuracy": confidence_change(trials, ("display", "advice", "accuracy")),
        "oucs": oucs(trials, ("display", "advice")),
        "oucs_accuracy": oucs(trials, ("display", "advice", "accuracy")),
        "overweighting": overweighting(trials),
    }
    corrections = choice_support_correction(trials)
    fits = fit_by_model(trials)
    n_answered = answered(trials)["model"].value_counts()
    models = sorted(set(trials["model"]) | set(accuracy.index))
    summary: dict[str, Any] = {}
    for model in models:
        rows = _of(trials, model)
        ratio = _overweighting_entry(
            _of(tables["overweighting"], model), float(corrections.get(model, math.nan))
        )
        by2 = ("display", "advice")
        by3 = ("display", "advice", "accuracy")
        summary[model] = {
            "n_trials": int(n_answered.get(model, 0)),
            "accuracy_initial": _lookup(accuracy, model, "accuracy_initial", math.nan),
            "accuracy_initial_source": _lookup(accuracy, model, "source", None),
            "com_rate": nest(_of(tables["com"], model), ("display",)),
            "com_rate_by_advice": nest(_of(tables["com_advice"], model), by2),
            "confidence_change": nest(_of(tables["change"], model), by2),
            "oucs": nest(_of(tables["oucs"], model), by2),
            "overweighting": ratio["headline"],
            "fit": (fits.get(model) or fit_update_model(rows)).to_dict(),
            # Extras beyond the contract.
            "n_items": int(rows["item_id"].nunique()),
            "n_initial_calls": _lookup(accuracy, model, "n_initial_calls", 0),
            "n_with_confidence": int(
                (rows["initial_confidence"].notna() & rows["final_prob_initial"].notna()).sum()
            ),
            "n_censored": {
                "initial": int(rows["initial_censored"].sum()),
                "final": int(rows["final_censored"].sum()),
            },
            "com_rate_by_accuracy": nest(_of(tables["com_accuracy"], model), by3),
            "confidence_change_by_accuracy": nest(_of(tables["change_accuracy"], model), by3),
            "oucs_by_accuracy": nest(_of(tables["oucs_accuracy"], model), by3),
            "overweighting_detail": ratio["detail"],
            # Item-clustered standard errors of the cell means above: items recur in every
            # condition, so the trials of a cell are not independent.
            "se_item": {
                "com_rate_by_advice": nest(_of(tables["com_advice"], model), by2, "se_item"),
                "confidence_change": nest(_of(tables["change"], model), by2, "se_item"),
                "oucs": nest(_of(tables["oucs"], model), by2, "se_item"),
            },
        }
    document: dict[str, Any] = json_ready(
        {
            "models": summary,
            "analysis": {
                "clip": [CLIP_LOW, CLIP_HIGH],
                "fit_model": "Tobit (censored at the clip bounds) of logit(q) on logit(c), "
                "shown flag, logit(a)*[same], -logit(a)*[opposite]",
                "overweighting_headline": f"ratio of sums pooled over {POOLED}, shown trials "
                "less the choice-support correction",
            },
        }
    )
    return document
