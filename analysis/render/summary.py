"""summary.json: every measure per model, as one JSON-ready dict (the contract in docs/design.md).

The contract keys (n_trials, accuracy_initial, com_rate, com_rate_by_advice,
confidence_change, oucs, overweighting, overweighting_hidden, overweighting_logodds,
n_with_confidence, fit; `analysis.bayes_clip`) are always present for every model; cells of
displays or advice types absent from the data are absent, and a number that cannot be
computed is null. Everything else is an extra, free to grow. Confidence measures are on the
scale the analysis chose (raw or temperature-scaled; `calibration.confidence_scale`).

The three overweighting versions (`analysis.measures.overweighting`): `overweighting` is the paper's
(probability scale, ratio of sums pooled over shown and hidden, choice support removed from
shown + opposite only), `overweighting_hidden` the journal version's (hidden trials alone),
`overweighting_logodds` the log-odds one (choice support removed from every shown trial).
Each is a ratio of sums; `overweighting_detail` holds the trial-wise medians and means, the
counts and the corrections beside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.data.prepare import answered
from analysis.data.temperature import Prior
from analysis.measures.cells import nest
from analysis.measures.com_regression import display_coefficient
from analysis.measures.fit import fit_update_model
from analysis.measures.overweighting import POOLED, RATIO_ADVICE
from analysis.measures.results import Results, compute_results

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


def _headline(table: pd.DataFrame, display: str) -> dict[str, float]:
    """{same, opposite}: the ratio of sums of `display`'s rows (NaN where absent)."""
    rows = table.loc[table["display"] == display]
    return {
        advice: float(rows.loc[rows["advice"] == advice, "ratio_of_sums"].iloc[0])
        if (rows["advice"] == advice).any()
        else math.nan
        for advice in RATIO_ADVICE
    }


def _ratio_detail(table: pd.DataFrame, correction: float) -> dict[str, Any]:
    def stats(row: pd.Series) -> dict[str, Any]:
        return {name: row[name] for name in _RATIO_STATS}

    pooled = table.loc[table["display"] == POOLED]
    by_display: dict[str, dict[str, Any]] = {}
    for _, row in table.loc[table["display"] != POOLED].iterrows():
        by_display.setdefault(str(row["display"]), {})[str(row["advice"])] = stats(row)
    return {
        "choice_support_correction": correction,
        "pooled_displays": POOLED,
        "pooled": {str(row["advice"]): stats(row) for _, row in pooled.iterrows()},
        "by_display": by_display,
    }


def _overweighting_entries(results: Results, model: str) -> dict[str, Any]:
    """The three contract entries and their detail (`analysis.measures.overweighting`)."""
    paper = _of(results.overweighting, model)
    logodds = _of(results.overweighting_logodds, model)
    detail = _ratio_detail(paper, float(results.corrections.get(model, math.nan)))
    detail["corrected"] = "shown + opposite (and each own-answer control + opposite)"
    detail["logodds"] = _ratio_detail(
        logodds, float(results.corrections_logodds.get(model, math.nan))
    ) | {"corrected": "every shown trial (and each own-answer control's)"}
    return {
        "overweighting": _headline(paper, POOLED),
        "overweighting_hidden": _headline(paper, "hidden"),
        "overweighting_logodds": _headline(logodds, POOLED),
        "overweighting_detail": detail,
    }


def _clip_entry(results: Results, model: str) -> dict[str, Any]:
    """{display: {advice: {accuracy: {bayes_clip: {n, oucs, overweighting, ...}}}}} of the
    cells the clip bites (`analysis.measures.clip_sensitivity`)."""
    entry: dict[str, Any] = {}
    for _, row in _of(results.clip_sensitivity, model).iterrows():
        cell = entry.setdefault(str(row["display"]), {}).setdefault(str(row["advice"]), {})
        cell.setdefault(f"{float(row['accuracy']):g}", {})[f"{float(row['bayes_clip']):g}"] = {
            "n": int(row["n"]),
            "oucs": row["oucs"],
            "n_ratio": int(row["n_ratio"]),
            "overweighting": row["overweighting"],
            "overweighting_logodds": row["overweighting_logodds"],
        }
    return entry


def summarise(
    trials: pd.DataFrame,
    stage1: pd.DataFrame | None = None,
    *,
    prior: Prior | None = None,
    bayes_clip: float | None = None,
) -> dict[str, Any]:
    """The summary.json content for a trials table (and the run's stage-1 calls).

    `trials` as read or prepared, `prior` and `bayes_clip` as `compute_results` takes them.
    Without `stage1` (a run with no calls.jsonl) initial accuracy is computed from the
    stage-1 answers recorded in the trials table, and the summary says so
    (`accuracy_initial_source`; see `initial_accuracy_table`).
    """
    return summary_document(
        compute_results(trials, stage1, prior=prior, bayes_clip=bayes_clip, fitted_model="tobit")
    )


def _records(table: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in columns} for _, row in table.iterrows()]


def _calibration_entry(results: Results, model: str) -> dict[str, Any]:
    fitted = _of(results.temperatures, model)
    metrics = _of(results.calibration, model)
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
    return entry


def _by_condition(table: pd.DataFrame) -> dict[str, Any]:
    """{condition: {n, com_rate, confidence_change, oucs, ...}} for any paradigm."""
    keys = (
        "n",
        "n_items",
        "com_rate",
        "n_with_confidence",
        "confidence_change",
        "oucs",
    )
    return {str(row["condition"]): {key: row[key] for key in keys} for _, row in table.iterrows()}


def _sequences(table: pd.DataFrame) -> dict[str, Any]:
    """{condition: {sequence, n, com_rate, final_confidence, bayes_posterior, oucs}}."""
    return {
        str(row["condition"]): {
            "sequence": row["sequence"],
            "advisors": int(row["advisors"]),
            "n": int(row["n"]),
            "com_rate": row["com_rate"],
            "final_confidence": row["final_confidence"],
            "bayes_posterior": row["bayes_post"],
            "oucs": row["oucs"],
            "oucs_ci95": [row["oucs_ci_low"], row["oucs_ci_high"]],
        }
        for _, row in table.iterrows()
    }


def _model_entry(results: Results, model: str) -> dict[str, Any]:
    trials = results.trials
    rows = _of(trials, model)
    accuracy = results.accuracy
    by2, by3 = ("display", "advice"), ("display", "advice", "accuracy")
    ratio = _overweighting_entries(results, model)
    fit = results.fits.get(model) or fit_update_model(rows)
    support = _of(results.choice_support, model)
    n_answered = len(answered(rows))
    return {
        "n_trials": n_answered,
        "accuracy_initial": _lookup(accuracy, model, "accuracy_initial", math.nan),
        "accuracy_initial_source": _lookup(accuracy, model, "source", None),
        "com_rate": nest(_of(results.com, model), ("display",)),
        "com_rate_by_advice": nest(_of(results.com_advice, model), by2),
        "confidence_change": nest(_of(results.change, model), by2),
        "oucs": nest(_of(results.oucs, model), by2),
        "overweighting": ratio["overweighting"],
        "overweighting_hidden": ratio["overweighting_hidden"],
        "overweighting_logodds": ratio["overweighting_logodds"],
        "fit": fit.to_dict(),
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
        "calibration": _calibration_entry(results, model),
        "by_condition": _by_condition(_of(results.by_condition, model)),
        **(
            {"sequences": _sequences(_of(results.sequences, model))}
            if (results.sequences["model"] == model).any()
            else {}
        ),
        "com_rate_by_accuracy": nest(_of(results.com_accuracy, model), by3),
        "confidence_change_by_accuracy": nest(_of(results.change_accuracy, model), by3),
        "oucs_by_accuracy": nest(_of(results.oucs_accuracy, model), by3),
        "overweighting_detail": ratio["overweighting_detail"],
        "clip_sensitivity": _clip_entry(results, model),
        "choice_support_test": (
            {
                k: support.iloc[0][k]
                for k in ("estimate", "se_item", "ci_low", "ci_high", "p_value", "n_items")
            }
            if not support.empty
            else {}
        ),
        "com_regression": {
            str(row["term"]): {
                k: row[k]
                for k in ("estimate", "se_item", "ci_low", "ci_high", "p_value", "odds_ratio")
            }
            for _, row in _of(results.com_regression, model).iterrows()
        },
        "display_coefficient": display_coefficient(results.com_regression, model)["estimate"],
        "switching": _records(
            _of(results.switching, model),
            (
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
            ),
        ),
        # Item-clustered standard errors and 95 % intervals of the cell means above: items
        # recur in every condition, so the trials of a cell are not independent.
        "se_item": {
            "com_rate": nest(_of(results.com, model), ("display",), "se_item"),
            "com_rate_by_advice": nest(_of(results.com_advice, model), by2, "se_item"),
            "confidence_change": nest(_of(results.change, model), by2, "se_item"),
            "oucs": nest(_of(results.oucs, model), by2, "se_item"),
        },
        "ci95": {
            name: {
                "low": nest(_of(table, model), keys, "ci_low"),
                "high": nest(_of(table, model), keys, "ci_high"),
            }
            for name, table, keys in (
                ("com_rate", results.com, ("display",)),
                ("com_rate_by_advice", results.com_advice, by2),
                ("confidence_change", results.change, by2),
                ("oucs", results.oucs, by2),
            )
        },
    }


def summary_document(results: Results) -> dict[str, Any]:
    """summary.json's content from computed results (NaN as None)."""
    models = {model: _model_entry(results, model) for model in results.models}
    document: dict[str, Any] = json_ready(
        {
            "models": models,
            "analysis": {
                "bayes_clip": results.bayes_clip,
                "clip": [results.bayes_clip, 1.0 - results.bayes_clip],
                "bayes_clip_rule": "c and a are clipped to [bayes_clip, 1 - bayes_clip] before "
                "every logit of the Bayes baseline and the measures (0: exact Bayes; at a = 1.0 "
                "the posterior is then 1 or 0, and log-odds measures leave out infinite "
                "updates); the Tobit fit keeps the simulated agent's [0.01, 0.99] as its "
                "censoring points",
                "prior": results.prior,
                "confidence_scale": "confidences of a model with a temperature applied are "
                "temperature-scaled at both turns (calibration.temperature_applied); "
                "raw otherwise",
                "fit_model": "Tobit (censored at the clip bounds) of logit(q) on logit(c), "
                "shown flag, Delta*[same], Delta*[opposite] (Delta: the Bayes log-odds shift "
                "of the initially chosen option, +-logit(a) for two options); displays "
                "shown, hidden and other",
                "bayes": "K options: a wrong advisor picks uniformly among the K-1 other "
                "options; post_i = p_i L_i / sum_j p_j L_j; a sequence of advisors adds its "
                "log-odds shifts",
                "framing": "measures are framed on the initially chosen option; under the "
                "answer-wrong display, on the displayed (wrong) answer",
                "overweighting_headline": f"ratio of sums pooled over {POOLED}; shown + opposite "
                "trials less the choice-support correction (shown-neutral minus hidden-neutral "
                "mean update); shown + same uncorrected; a = 1/K excluded",
                "overweighting_hidden": "ratio of sums over hidden trials alone",
                "overweighting_logodds": "ratio of sums of logit(final) - logit(c) over "
                "logit(bayes_post) - logit(c), clipped; the choice-support correction in "
                "log-odds removed from every shown trial",
                "weights_estimator": "ratios are biased toward 1 where confidences reach the "
                "clip bounds; the Tobit update fit (`fit`) estimates the weights",
                "errors": "se_item and ci95: clustered by item (CR1), t with G-1 df",
                "fitted_model": results.fitted_model.kind,
            },
        }
    )
    return document
