"""Overweighting of advice: the observed confidence update relative to the Bayes update.

Per trial, on the initially chosen option, with c the initial confidence and q the final
probability of the initially chosen option: observed update = q - c and Bayes update =
bayes_post - c. A ratio above 1 means the advice moved the model more than it should move an
ideal observer. Three versions (docs/paradigm.md 5; the paper publishes no code):

- `overweighting` (summary.json `overweighting`, the paper's measure): probability scale.
  Seeing its own answer (display `shown`) raises a model's confidence whatever the advice;
  that choice-supportive part, the mean shown-neutral update minus the mean hidden-neutral
  update, is subtracted from shown + OPPOSITE updates only, as the paper does. Shown + same
  updates are not corrected: the correction is measured at the neutral-advice confidence, and
  on the probability scale the same boost is worth less once same advice has pushed
  confidence towards 1, so subtracting it there over-corrects (an agent that weighs
  supportive advice exactly would read below 1). Without both neutral cells the correction
  is unknown and shown + opposite trials drop out (no number rather than a biased one).
- hidden trials alone (summary.json `overweighting_hidden`, the journal version's measure):
  the `hidden` rows of `overweighting`, never corrected.
- `overweighting_logodds` (summary.json `overweighting_logodds`): the same ratio on the
  log-odds scale, observed logit(q) - logit(c) over Bayes logit(bayes_post) - logit(c), with
  the analysis's clipping (`analysis.engines.logodds`). Choice support adds a constant on this scale
  (the simulated agent's own model), so its estimate, the mean shown-neutral minus the mean
  hidden-neutral log-odds update, is subtracted from every shown trial, same and opposite.
  Trials whose log-odds are not finite (exact Bayes at a = 1.0) are left out.

Common rules: only `same` and `opposite` advice, and no trial with a stated accuracy of 1/K
(0.5 for two options): there the Bayes update is 0 and a ratio is undefined. With K options
the Bayes update is the K-option one (`analysis.engines.bayes`). The controls that also present an
answer as the model's own (`answer-wrong`, `in-context`) follow the shown rule with their own
neutral cell (that display's neutral update minus hidden-neutral): they are reported per
display and never pooled into the headline, since their neutral cell estimates their own
choice support (an answer-wrong display supports an answer the model did not give). `other`
trials are never corrected. Three summaries per cell: the mean and the median of trial-wise
ratios (which explode where the Bayes update is near 0) and the ratio of sums (sum of updates
over sum of Bayes updates); the headline is the ratio of sums pooled over the shown and
hidden displays (POOLED). Where confidences reach the clip bounds every ratio is biased
towards 1 (a clipped final confidence cannot show the whole update); the Tobit update fit
(`analysis.measures.fit`) is the estimator of the agent's weights.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import measure_input
from mindshift.analysis.data.schema import OWN_DISPLAYS
from mindshift.analysis.engines.logodds import logit
from mindshift.analysis.measures.cells import sort_cells
from mindshift.analysis.measures.choice_support import Scale, display_corrections, updates
from mindshift.analysis.measures.registry import (
    FigureSpec,
    HeadlineRow,
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

RATIO_ADVICE: Final = ("same", "opposite")
"""Advice types with a non-zero Bayes update, for which a ratio is defined."""
POOLED: Final = "shown+hidden"
"""The `display` label of the headline rows, pooled over the shown and hidden displays."""
CORRECTED_ADVICE: Final[dict[str, tuple[str, ...]]] = {
    "probability": ("opposite",),
    "logodds": ("same", "opposite"),
}
"""Per scale, the advice types whose own-answer trials lose the choice-support part."""
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


def update_table(trials: pd.DataFrame) -> pd.DataFrame:
    """The prepared `trials` with every update of the three versions, per trial:

    - `observed_update`, `bayes_update`: q - c and bayes_post - c;
    - `corrected_update`: the observed update less the display's choice-support correction
      (`display_corrections`) on own-answer displays under opposite advice; the observed
      update everywhere else (the paper's rule);
    - `observed_logodds_update`, `bayes_logodds_update`: logit(q) - logit(c) and
      logit(bayes_post) - logit(c), clipped at the table's bayes_clip;
    - `corrected_logodds_update`: the log-odds update less the display's log-odds correction
      on own-answer displays under same and opposite advice.
    """
    data, bayes_clip = measure_input(trials)
    own = data["display"].isin(list(OWN_DISPLAYS))
    keys = pd.MultiIndex.from_arrays([data["model"], data["display"]])
    columns: dict[str, pd.Series] = {}
    scales: tuple[tuple[Scale, str], ...] = (("probability", ""), ("logodds", "logodds_"))
    for scale, prefix in scales:
        observed = updates(data, scale, bayes_clip)
        table = display_corrections(data, scale)
        correction = pd.Series(
            table.reindex(keys).to_numpy(np.float64) if len(table) else np.nan, index=data.index
        )
        corrected = own & data["advice"].isin(CORRECTED_ADVICE[scale])
        columns[f"observed_{prefix}update"] = observed
        columns[f"corrected_{prefix}update"] = observed.where(~corrected, observed - correction)
    c = data["initial_confidence"].to_numpy(np.float64)
    post = data["bayes_post"].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        bayes_logodds = logit(post, bayes_clip) - logit(c, bayes_clip)
    return data.assign(
        **columns,
        bayes_update=data["bayes_post"] - data["initial_confidence"],
        bayes_logodds_update=bayes_logodds,
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


def ratio_trials(trials: pd.DataFrame, scale: Scale = "probability") -> pd.DataFrame:
    """The trials that enter a ratio on `scale`, with `_update` (corrected) and `_bayes`."""
    data = update_table(trials)
    prefix = "logodds_" if scale == "logodds" else ""
    update = data[f"corrected_{prefix}update"].to_numpy(np.float64)
    bayes = data[f"bayes_{prefix}update"].to_numpy(np.float64)
    usable = (
        data["advice"].isin(RATIO_ADVICE).to_numpy()
        # Accuracy 1/K (0.5 for two options) carries no evidence: no ratio is defined.
        & ~np.isclose(
            data["accuracy"].to_numpy(np.float64), 1.0 / data["n_options"].to_numpy(np.float64)
        )
        & np.isfinite(update)
        & np.isfinite(bayes)
    )
    selected: pd.DataFrame = data.loc[usable].assign(_update=update[usable], _bayes=bayes[usable])
    return selected


def ratio_cells(data: pd.DataFrame) -> pd.DataFrame:
    """`ratio_trials` rows summarised per model x display x advice, plus POOLED rows."""
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


def overweighting(trials: pd.DataFrame) -> pd.DataFrame:
    """The paper's overweighting ratios (probability scale, choice support removed from
    own-answer + opposite trials only) per model x display x advice, plus POOLED rows.

    Columns: OVERWEIGHTING_COLUMNS. `n` counts the trials entering the ratio of sums.
    A cell with no usable trial is absent. The `hidden` rows are the journal version's.
    """
    return ratio_cells(ratio_trials(trials, "probability"))


def overweighting_logodds(trials: pd.DataFrame) -> pd.DataFrame:
    """Overweighting on the log-odds scale (choice support, in log-odds, removed from every
    own-answer trial): columns and rows as `overweighting`."""
    return ratio_cells(ratio_trials(trials, "logodds"))


_RATIO_STATS: Final = (
    "n",
    "mean_ratio",
    "median_ratio",
    "ratio_of_sums",
    "mean_update",
    "mean_bayes_update",
)


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


def _overweighting_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's three versions (`overweighting`, `overweighting_hidden`,
    `overweighting_logodds`) and `overweighting_detail`."""
    paper = model_rows(results.table("overweighting"), model)
    logodds = model_rows(results.table("overweighting_logodds"), model)
    corrections = model_rows(results.table("choice_support_correction"), model)

    def correction(scale: str) -> float:
        return float(corrections[scale].iloc[0]) if len(corrections) else math.nan

    detail = _ratio_detail(paper, correction("probability"))
    detail["corrected"] = "shown + opposite (and each own-answer control + opposite)"
    detail["logodds"] = _ratio_detail(logodds, correction("logodds")) | {
        "corrected": "every shown trial (and each own-answer control's)"
    }
    return {
        "overweighting": _headline(paper, POOLED),
        "overweighting_hidden": _headline(paper, "hidden"),
        "overweighting_logodds": _headline(logodds, POOLED),
        "overweighting_detail": detail,
    }


register(
    Measure(
        key="overweighting",
        title="Overweighting of advice",
        function=overweighting,
        compute=on_trials(overweighting),
        caption="Observed over Bayes confidence update (probability scale), per display and "
        "advice and pooled over shown and hidden, the choice-supportive part removed from "
        "shown + opposite updates.",
        summary=_overweighting_entries,
        scale="ratio",
        factorial=True,
        figure=FigureSpec(
            "updates_observed_vs_bayes.png",
            "updates",
            "Observed confidence update against the ideal observer's update, binned means "
            "(± SEM); the dashed line is the Bayes-optimal identity. Steeper than the identity "
            "means the advice is overweighted. Observed updates are uncorrected here.",
            cites=(update_table,),
        ),
        headline=(
            HeadlineRow(
                "overweighting same",
                (("display", POOLED), ("advice", "same")),
                column="ratio_of_sums",
                style="ratio",
            ),
            HeadlineRow(
                "overweighting opposite",
                (("display", POOLED), ("advice", "opposite")),
                column="ratio_of_sums",
                style="ratio",
            ),
        ),
    )
)
register(
    Measure(
        key="overweighting_logodds",
        title="Overweighting of advice, log-odds",
        function=overweighting_logodds,
        compute=on_trials(overweighting_logodds),
        caption="Observed over Bayes update on the log-odds scale, the choice-supportive part "
        "removed from every shown trial.",
        scale="ratio",
        factorial=True,
    )
)
