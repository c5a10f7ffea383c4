"""OUCS, the over/under-confidence score: final confidence minus the Bayes posterior.

Both are probabilities of the initially chosen option; positive means more confident in the
initial choice than an ideal observer would be after the same advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd

from mindshift.analysis.data.prepare import ensure_prepared
from mindshift.analysis.data.schema import ADVICE_TYPES, canonical_order
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.registry import FigureSpec, HeadlineRow, Measure, register


def oucs(trials: pd.DataFrame, by: Sequence[str] = ("display", "advice")) -> pd.DataFrame:
    """Mean OUCS per model x `by` cell (columns `model, *by, n, mean, sem, se_item`).

    An unprepared table is prepared first (`analysis.data.prepare.ensure_prepared`).
    """
    rows = ensure_prepared(trials)
    return cell_stats(rows, rows["final_prob_initial"] - rows["bayes_post"], by)


PAPER_DISPLAYS: Final = ("hidden", "shown", "other")
"""Column order of the paper's OUCS tables (hidden first, as the paper's Tables 1-3)."""


def oucs_paper_table(cells: pd.DataFrame, value: str = "mean") -> pd.DataFrame:
    """An `oucs` table in the layout of the paper's Tables 1-3: one row per advice type
    (per accuracy, when `cells` has an accuracy column), one column per display.

    `cells` is `oucs(trials, by=("display", "advice"[, "accuracy"]))`; the index is
    (model, advice[, accuracy]); `value` picks the statistic (mean, se_item, ci_low, ...).
    """
    index = ["model", "advice", *(["accuracy"] if "accuracy" in cells.columns else [])]
    if cells.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=index))
    wide = cells.pivot_table(index=index, columns="display", values=value, sort=False)
    displays = canonical_order(wide.columns, PAPER_DISPLAYS)
    advice_rank = {advice: i for i, advice in enumerate(ADVICE_TYPES)}
    order = sorted(
        wide.index,
        key=lambda key: (key[0], advice_rank.get(key[1], len(advice_rank)), *key[2:]),
    )
    return wide.loc[order, displays].rename_axis(columns=None)


register(
    Measure(
        key="oucs",
        title="OUCS",
        function=oucs,
        cells=("display", "advice"),
        intervals=True,
        scale="signed",
        factorial=True,
        caption="Over/under-confidence score: final confidence minus the Bayes posterior, both "
        "of the initially chosen option (positive: overconfident in it).",
        figure=FigureSpec(
            "oucs.png",
            "bars",
            "Over/under-confidence score: final confidence minus the Bayes posterior, both on "
            "the initially chosen option.",
            title="Over/under-confidence vs the Bayesian observer (OUCS, mean, 95 % CI)",
            ylabel="OUCS (final \N{MINUS SIGN} Bayes posterior)\n< 0 underconfident · > 0 "
            "overconfident",
            empty="no confidence data",
        ),
        headline=(
            HeadlineRow("OUCS hidden / opposite", (("display", "hidden"), ("advice", "opposite"))),
        ),
    )
)
register(
    Measure(
        key="oucs_by_accuracy",
        title="OUCS by advice accuracy",
        function=oucs,
        cells=("display", "advice", "accuracy"),
        scale="signed",
        factorial=True,
        caption="Final confidence minus the Bayes posterior, per display, advice type and stated "
        "advice accuracy.",
    )
)
