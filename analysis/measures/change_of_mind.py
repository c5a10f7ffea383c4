"""Change-of-mind rates: how often the final choice differs from the initial one."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mindshift.analysis.data.prepare import answered
from mindshift.analysis.data.turns import last_turn
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.registry import FigureSpec, HeadlineRow, Measure, register


def com_rates(trials: pd.DataFrame, by: Sequence[str] = ("display",)) -> pd.DataFrame:
    """Mean of `changed_mind` per model x `by` cell (columns `model, *by, n, mean, sem, se_item`).

    Every answered trial counts, with or without a confidence: models read without logprobs
    enter the change-of-mind measures too (docs/paradigm.md 3). An unprepared table is
    prepared first (`analysis.data.prepare.ensure_prepared`): under the answer-wrong control a
    change of mind is leaving the displayed answer. A protocol of more than two turns counts
    each condition's last turn (`analysis.data.turns.last_turn`), not its turns pooled.
    """
    rows = last_turn(answered(trials))
    return cell_stats(rows, rows["changed_mind"].astype(float), by)


register(
    Measure(
        key="com_rate",
        title="Change of mind by display",
        function=com_rates,
        cells=("display",),
        intervals=True,
        scale="rate",
        factorial=True,
        caption="Share of trials whose final answer differs from the initial one, per display.",
        headline=(
            HeadlineRow("CoM, shown", (("display", "shown"),), style="rate"),
            HeadlineRow("CoM, hidden", (("display", "hidden"),), style="rate"),
        ),
    )
)
register(
    Measure(
        key="com_rate_by_advice",
        title="Change of mind by display and advice",
        function=com_rates,
        cells=("display", "advice"),
        intervals=True,
        scale="rate",
        factorial=True,
        caption="Share of trials whose final answer differs from the initial one, per display "
        "and advice type.",
    )
)
register(
    Measure(
        key="com_rate_by_accuracy",
        title="Change of mind by advice accuracy",
        function=com_rates,
        cells=("display", "advice", "accuracy"),
        scale="rate",
        factorial=True,
        caption="Share of trials whose final answer differs from the initial one, per display, "
        "advice type and stated advice accuracy.",
        figure=FigureSpec(
            "com_by_accuracy.png",
            "accuracy_lines",
            "Change-of-mind rate against stated advice accuracy, a line per advice type and a "
            "panel per display.",
            title="Change-of-mind rate by advice accuracy (mean, 95 % CI clustered by item)",
            ylabel="change of mind (% of trials)",
        ),
    )
)
