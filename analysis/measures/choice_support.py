"""The choice-supportive bias: seeing its answer as its own raises a model's confidence.

Measured under neutral advice (no evidence either way) as the mean confidence update of the
trials that display the model's answer as its own (`shown`) minus that of the trials that hide
it (paper, Gemma 3 12B: +0.21). `choice_support_test` gives it per model with an
item-clustered error; `display_corrections` gives the same difference for every own-answer
display (the `answer-wrong` and `in-context` controls too), on the probability or the log-odds
scale: the choice-supportive part the overweighting ratios subtract
(`analysis.measures.overweighting`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import ensure_prepared, measure_input
from mindshift.analysis.data.schema import OWN_DISPLAYS, model_ids
from mindshift.analysis.engines.clustered import cluster_codes, interval, n_clusters, p_value
from mindshift.analysis.engines.logodds import logit
from mindshift.analysis.measures.confidence_change import observed_update
from mindshift.analysis.measures.registry import (
    HeadlineRow,
    Measure,
    MeasureInput,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

Scale = Literal["probability", "logodds"]
"""The scale of a confidence update: q - c, or logit(q) - logit(c)."""


def logodds_update(trials: pd.DataFrame, bayes_clip: float) -> pd.Series:
    """Per trial: logit(final_prob_initial) - logit(initial_confidence), both clipped."""
    final = logit(trials["final_prob_initial"].to_numpy(np.float64), bayes_clip)
    initial = logit(trials["initial_confidence"].to_numpy(np.float64), bayes_clip)
    with np.errstate(invalid="ignore"):
        return pd.Series(final - initial, index=trials.index, name="logodds_update")


def updates(trials: pd.DataFrame, scale: Scale, bayes_clip: float) -> pd.Series:
    if scale == "logodds":
        return logodds_update(trials, bayes_clip)
    return observed_update(trials)


def _neutral_means(updates: pd.Series, trials: pd.DataFrame) -> pd.Series:
    keep = trials["advice"].eq("neutral") & np.isfinite(updates.to_numpy(np.float64))
    means: pd.Series = (
        trials.loc[keep, ["model", "display"]]
        .assign(update=updates[keep])
        .groupby(["model", "display"])["update"]
        .mean()
    )
    return means


def display_corrections(trials: pd.DataFrame, scale: Scale = "probability") -> pd.Series:
    """Per (model, display) of OWN_DISPLAYS: that display's mean neutral update minus the
    hidden one's, on `scale` (NaN if either is unknown). The `shown` entries equal
    `choice_support_correction`."""
    data, bayes_clip = measure_input(trials)
    cells = _neutral_means(updates(data, scale, bayes_clip), data)
    keys = [(model, display) for model in model_ids(data) for display in OWN_DISPLAYS]
    values = [
        float(cells.get((model, display), np.nan)) - float(cells.get((model, "hidden"), np.nan))
        for model, display in keys
    ]
    return pd.Series(
        values, index=pd.MultiIndex.from_tuples(keys, names=["model", "display"]), dtype=float
    )


def choice_support_correction(trials: pd.DataFrame, scale: Scale = "probability") -> pd.Series:
    """Per model: mean shown-neutral update minus mean hidden-neutral update on `scale`
    (NaN if unknown)."""
    data = ensure_prepared(trials)
    table = display_corrections(data, scale)
    models = model_ids(data)
    values = [float(table.get((model, "shown"), np.nan)) for model in models]
    return pd.Series(values, index=pd.Index(models, name="model"), name="correction")


def choice_support_test(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model: the choice-support correction with its item-clustered error and t test.

    The estimate is `choice_support_correction` (shown-neutral minus hidden-neutral mean
    update). Its error treats it as a difference of two means over the same items: each trial
    contributes its influence (u - mean) / n (shown) or -(u - mean) / n (hidden), the
    contributions are summed per item, and var = G / (G - 1) * sum of squared item sums (CR1).
    Columns: model, estimate, se_item, ci_low, ci_high, p_value, n_items (t with G - 1 df).
    """
    trials = ensure_prepared(trials)
    update = observed_update(trials).to_numpy(np.float64)
    keep = (
        trials["advice"].eq("neutral").to_numpy()
        & trials["display"].isin(("shown", "hidden")).to_numpy()
        & np.isfinite(update)
    )
    data = trials.loc[keep, ["model", "display", "item_id"]].assign(update=update[keep])
    rows: list[dict[str, Any]] = []
    nan = float("nan")
    for model in model_ids(trials):
        cell = data.loc[data["model"] == model]
        shown = cell["display"].eq("shown").to_numpy()
        values = cell["update"].to_numpy()
        n_shown, n_hidden = int(shown.sum()), int((~shown).sum())
        if n_shown == 0 or n_hidden == 0:
            rows.append(
                {
                    "model": model,
                    "estimate": nan,
                    "se_item": nan,
                    "ci_low": nan,
                    "ci_high": nan,
                    "p_value": nan,
                    "n_items": 0,
                }
            )
            continue
        mean_shown, mean_hidden = values[shown].mean(), values[~shown].mean()
        influence = np.where(
            shown, (values - mean_shown) / n_shown, -(values - mean_hidden) / n_hidden
        )
        codes = cluster_codes(cell["item_id"])
        g = n_clusters(codes)
        sums = np.bincount(codes, weights=influence)
        se = float(np.sqrt(g / (g - 1) * np.sum(sums**2))) if g > 1 else nan
        estimate = float(mean_shown - mean_hidden)
        low, high = interval(estimate, se, g - 1)
        rows.append(
            {
                "model": model,
                "estimate": estimate,
                "se_item": se,
                "ci_low": float(low),
                "ci_high": float(high),
                "p_value": float(p_value(estimate, se, g - 1)),
                "n_items": g,
            }
        )
    return pd.DataFrame(
        rows, columns=["model", "estimate", "se_item", "ci_low", "ci_high", "p_value", "n_items"]
    )


def _test_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `choice_support_test` ({} for a model without the two neutral cells)."""
    rows = model_rows(results.table("choice_support"), model)
    names = ("estimate", "se_item", "ci_low", "ci_high", "p_value", "n_items")
    return {"choice_support_test": {k: rows.iloc[0][k] for k in names} if not rows.empty else {}}


def _corrections(data: MeasureInput) -> pd.DataFrame:
    """Per model, the choice-support correction on both scales (`choice_support_correction`)."""
    probability = choice_support_correction(data.trials)
    logodds = choice_support_correction(data.trials, "logodds")
    return pd.DataFrame(
        {
            "model": probability.index.to_numpy(),
            "probability": probability.to_numpy(),
            "logodds": logodds.reindex(probability.index).to_numpy(),
        }
    )


register(
    Measure(
        key="choice_support",
        title="Choice-supportive bias",
        function=choice_support_test,
        compute=on_trials(choice_support_test),
        caption="Mean confidence change under neutral advice, shown minus hidden, with its "
        "item-clustered interval and t test.",
        summary=_test_entries,
        scale="signed",
        factorial=True,
        headline=(
            HeadlineRow("choice-support shift (conf.)", column="estimate", style="estimate"),
        ),
    )
)
register(
    Measure(
        key="choice_support_correction",
        title="Choice-support correction",
        function=choice_support_correction,
        compute=_corrections,
        caption="Per model, the mean shown-neutral minus hidden-neutral update on the "
        "probability and the log-odds scale: what the overweighting ratios subtract.",
        csv=False,
        scale="signed",
        factorial=True,
    )
)
