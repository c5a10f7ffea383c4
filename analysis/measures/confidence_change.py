"""Confidence change: final minus initial probability of the initially chosen option."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mindshift.analysis.data.prepare import ensure_prepared, refuse_as_read
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.registry import FigureSpec, Measure, register


def observed_update(trials: pd.DataFrame) -> pd.Series:
    """Per trial of `trials` as given: final_prob_initial - initial_confidence (NaN where
    either is unknown). A run's table as read is refused: its rows are not framed."""
    refuse_as_read(trials)
    return trials["final_prob_initial"] - trials["initial_confidence"]


def confidence_change(
    trials: pd.DataFrame, by: Sequence[str] = ("display", "advice")
) -> pd.DataFrame:
    """Mean confidence change per model x `by` cell (columns `model, *by, n, mean, sem, se_item`).

    Trials whose initial or final confidence is unknown (censored, choice-only) are left out.
    An unprepared table is prepared first (`analysis.data.prepare.ensure_prepared`).
    """
    trials = ensure_prepared(trials)
    return cell_stats(trials, observed_update(trials), by)


register(
    Measure(
        key="confidence_change",
        title="Confidence change",
        function=confidence_change,
        cells=("display", "advice"),
        intervals=True,
        scale="signed",
        factorial=True,
        caption="Final minus initial probability of the initially chosen option, per display "
        "and advice type.",
        figure=FigureSpec(
            "confidence_change.png",
            "bars",
            "Confidence change (final minus initial probability of the initially chosen option) "
            "by display and advice.",
            title="Confidence change by display and advice (mean, 95 % CI clustered by item)",
            ylabel="confidence change\n(final \N{MINUS SIGN} initial, initial choice)",
            empty="no confidence data",
        ),
    )
)
register(
    Measure(
        key="confidence_change_by_accuracy",
        title="Confidence change by advice accuracy",
        function=confidence_change,
        cells=("display", "advice", "accuracy"),
        scale="signed",
        factorial=True,
        caption="Final minus initial probability of the initially chosen option, per display, "
        "advice type and stated advice accuracy.",
    )
)
