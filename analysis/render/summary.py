"""summary.json: every measure per model, as one JSON-ready dict (the contract in docs/design.md).

The contract keys (n_trials, accuracy_initial, com_rate, com_rate_by_advice,
confidence_change, oucs, overweighting, overweighting_hidden, overweighting_logodds,
n_with_confidence, fit; `analysis.bayes_clip`) are always present for every model; cells of
displays or advice types absent from the data are absent, and a number that cannot be
computed is null. Everything else is an extra, free to grow. Confidence measures are on the
scale the analysis chose (raw or temperature-scaled; `calibration.confidence_scale`).

Every registered measure (`analysis.measures.registry`) adds its entries, in the registry's
order: a cell measure its means nested by its cells under its key (and, with intervals, its
errors under `se_item` and its 95 % intervals under `ci95`), any other measure the entries its
module declares. The counts and the update fit come first.

The three overweighting versions (`analysis.measures.overweighting`): `overweighting` is the
paper's (probability scale, ratio of sums pooled over shown and hidden, choice support removed
from shown + opposite only), `overweighting_hidden` the journal version's (hidden trials alone),
`overweighting_logodds` the log-odds one (choice support removed from every shown trial).
Each is a ratio of sums; `overweighting_detail` holds the trial-wise medians and means, the
counts and the corrections beside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import answered
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.measures.cells import nest
from mindshift.analysis.measures.fit import fit_update_model
from mindshift.analysis.measures.overweighting import POOLED
from mindshift.analysis.measures.results import Results, compute_results
from mindshift.analysis.render.readouts import model_readout


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


def _model_entry(results: Results, model: str) -> dict[str, Any]:
    """One model's summary: the counts and the update fit, then each measure's entries in the
    registry's order (a cell measure's means nested by its cells; any other measure's own
    entries), then the item-clustered errors and intervals of the cell measures that give
    them."""
    rows = _of(results.trials, model)
    fit = results.fits.get(model) or fit_update_model(rows)
    entry: dict[str, Any] = {
        # How the confidences were read (`harness.readouts`), as the report's tables name it;
        # the fit names its estimator.
        "readout": model_readout(results, model),
        "n_trials": len(answered(rows)),
        "n_items": int(rows["item_id"].nunique()),
        "n_with_confidence": int(
            (rows["initial_confidence"].notna() & rows["final_prob_initial"].notna()).sum()
        ),
        "n_censored": {
            "initial": int(rows["initial_censored"].sum()),
            "final": int(rows["final_censored"].sum()),
        },
        "fit": fit.to_dict(),
    }
    # Item-clustered standard errors and 95 % intervals of the cell means: items recur in
    # every condition, so the trials of a cell are not independent.
    errors: dict[str, Any] = {}
    intervals: dict[str, Any] = {}
    for measure in results.measures:
        if measure.cells:
            cells = _of(results.table(measure.key), model)
            entry[measure.key] = nest(cells, measure.cells)
            if measure.intervals:
                errors[measure.key] = nest(cells, measure.cells, "se_item")
                intervals[measure.key] = {
                    "low": nest(cells, measure.cells, "ci_low"),
                    "high": nest(cells, measure.cells, "ci_high"),
                }
        elif measure.summary is not None:
            entry.update(measure.summary(results, model))
    entry["se_item"] = errors
    entry["ci95"] = intervals
    return entry


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
