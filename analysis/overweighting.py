"""Overweighting of advice: the observed confidence update relative to the Bayes update.

Per trial, on the initially chosen option: observed update = final_prob_initial - c and
Bayes update = bayes_post - c. A ratio above 1 means the advice moved the model more than it
should move an ideal observer.

Choices made here (documented because the paper publishes no code):
- Only `same` and `opposite` advice, and no trial with a stated accuracy of 1/K (0.5 for two
  options): there the Bayes update is 0 and a ratio is undefined (PARADIGM.md 4). With K
  options the Bayes update is the K-option one (`analysis.bayes`).
- Choice-support correction: seeing its own answer (display `shown`) raises a model's
  confidence whatever the advice. That part, estimated per model as the mean shown-neutral
  update minus the mean hidden-neutral update, is subtracted from the observed update of
  every shown+same and shown+opposite trial before any ratio, so the ratio measures the
  response to the advice alone. Without both neutral cells the correction is unknown: the
  shown trials then drop out (no shown rows; the pooled rows rest on hidden trials alone),
  since an uncorrected number would be biased. `hidden` and `other` trials are not corrected.
  The controls that also present an answer as the model's own (`answer-wrong`,
  `in-context`) get the same correction from their own neutral cell (that display's neutral
  update minus hidden-neutral); they are reported per display, never pooled.
- Trial-wise ratios explode where the Bayes update is near 0, so three summaries are
  reported: the mean and the median of trial-wise ratios, and the ratio of sums (sum of
  updates over sum of Bayes updates, i.e. the ratio of mean updates). The headline is the
  ratio of sums pooled over displays shown and hidden (POOLED), after correction.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.bayes import with_bayes
from analysis.cells import sort_cells
from analysis.clustered import cluster_codes, interval, n_clusters, p_value
from analysis.confidence_change import observed_update
from analysis.schema import OWN_DISPLAYS, model_ids

RATIO_ADVICE: Final = ("same", "opposite")
"""Advice types with a non-zero Bayes update, for which a ratio is defined."""
POOLED: Final = "shown+hidden"
"""The `display` label of the headline rows, pooled over the shown and hidden displays."""
OVERWEIGHTING_COLUMNS: Final = (
    "model",
    "display",
    "advice",
    "n",
    "mean_ratio",
    "median_ratio",
    "ratio_of_sums",
    "mean_update",
    "mean_bayes_update",
)


def choice_support_correction(trials: pd.DataFrame) -> pd.Series:
    """Per model: mean shown-neutral update minus mean hidden-neutral update (NaN if unknown)."""
    update = observed_update(trials)
    keep = trials["advice"].eq("neutral") & np.isfinite(update)
    cells = (
        trials.loc[keep, ["model", "display"]]
        .assign(update=update[keep])
        .groupby(["model", "display"])["update"]
        .mean()
    )
    models = model_ids(trials)
    values = [
        float(cells.get((model, "shown"), np.nan)) - float(cells.get((model, "hidden"), np.nan))
        for model in models
    ]
    return pd.Series(values, index=pd.Index(models, name="model"), name="correction")


def display_corrections(trials: pd.DataFrame) -> pd.Series:
    """Per (model, display) of OWN_DISPLAYS: that display's mean neutral update minus the
    hidden one's (NaN if either is unknown). The `shown` entries equal
    `choice_support_correction`."""
    update = observed_update(trials)
    keep = trials["advice"].eq("neutral") & np.isfinite(update)
    cells = (
        trials.loc[keep, ["model", "display"]]
        .assign(update=update[keep])
        .groupby(["model", "display"])["update"]
        .mean()
    )
    keys = [(model, display) for model in model_ids(trials) for display in OWN_DISPLAYS]
    values = [
        float(cells.get((model, display), np.nan)) - float(cells.get((model, "hidden"), np.nan))
        for model, display in keys
    ]
    return pd.Series(
        values, index=pd.MultiIndex.from_tuples(keys, names=["model", "display"]), dtype=float
    )


def choice_support_test(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model: the choice-support correction with its item-clustered error and t test.

    The estimate is `choice_support_correction` (shown-neutral minus hidden-neutral mean
    update). Its error treats it as a difference of two means over the same items: each trial
    contributes its influence (u - mean) / n (shown) or -(u - mean) / n (hidden), the
    contributions are summed per item, and var = G / (G - 1) * sum of squared item sums (CR1).
    Columns: model, estimate, se_item, ci_low, ci_high, p_value, n_items (t with G - 1 df).
    """
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


def update_table(trials: pd.DataFrame) -> pd.DataFrame:
    """`trials` with `bayes_post`, `observed_update`, `bayes_update` and `corrected_update`.

    `corrected_update` is the observed update less the model's choice-support correction on
    same and opposite trials of a display that presents the answer as the model's own
    (`display_corrections`), and the observed update everywhere else.
    """
    rows = trials if "bayes_post" in trials.columns else with_bayes(trials)
    observed = observed_update(rows)
    table = display_corrections(rows)
    keys = pd.MultiIndex.from_arrays([rows["model"], rows["display"]])
    correction = pd.Series(
        table.reindex(keys).to_numpy(np.float64) if len(table) else np.nan, index=rows.index
    )
    corrected_rows = rows["display"].isin(list(OWN_DISPLAYS)) & rows["advice"].isin(RATIO_ADVICE)
    return rows.assign(
        observed_update=observed,
        bayes_update=rows["bayes_post"] - rows["initial_confidence"],
        corrected_update=observed.where(~corrected_rows, observed - correction),
    )


def _ratio_stats(update: np.ndarray, bayes: np.ndarray) -> dict[str, Any]:
    nonzero = bayes != 0.0
    ratios = update[nonzero] / bayes[nonzero]
    bayes_sum = float(bayes.sum())
    return {
        "n": int(update.size),
        "mean_ratio": float(ratios.mean()) if ratios.size else np.nan,
        "median_ratio": float(np.median(ratios)) if ratios.size else np.nan,
        "ratio_of_sums": float(update.sum()) / bayes_sum if bayes_sum != 0.0 else np.nan,
        "mean_update": float(update.mean()) if update.size else np.nan,
        "mean_bayes_update": float(bayes.mean()) if bayes.size else np.nan,
    }


def overweighting(trials: pd.DataFrame) -> pd.DataFrame:
    """Overweighting ratios per model x display x advice, plus POOLED (shown+hidden) rows.

    Columns: OVERWEIGHTING_COLUMNS. `n` counts the trials entering the ratio of sums.
    A cell with no usable trial is absent.
    """
    data = update_table(trials)
    update = data["corrected_update"].to_numpy(np.float64)
    bayes = data["bayes_update"].to_numpy(np.float64)
    usable = (
        data["advice"].isin(RATIO_ADVICE).to_numpy()
        # Accuracy 1/K (0.5 for two options) carries no evidence: no ratio is defined.
        & ~np.isclose(
            data["accuracy"].to_numpy(np.float64), 1.0 / data["n_options"].to_numpy(np.float64)
        )
        & np.isfinite(update)
        & np.isfinite(bayes)
    )
    data = data.loc[usable].assign(_update=update[usable], _bayes=bayes[usable])
    rows: list[dict[str, Any]] = []
    for (model, display, advice), cell in data.groupby(["model", "display", "advice"]):
        stats = _ratio_stats(cell["_update"].to_numpy(), cell["_bayes"].to_numpy())
        rows.append({"model": model, "display": display, "advice": advice, **stats})
    pooled = data.loc[data["display"].isin(("shown", "hidden"))]
    for (model, advice), cell in pooled.groupby(["model", "advice"]):
        stats = _ratio_stats(cell["_update"].to_numpy(), cell["_bayes"].to_numpy())
        rows.append({"model": model, "display": POOLED, "advice": advice, **stats})
    table = pd.DataFrame(rows, columns=list(OVERWEIGHTING_COLUMNS))
    table["n"] = table["n"].astype(np.int64)
    return sort_cells(table, ("model", "display", "advice"))
