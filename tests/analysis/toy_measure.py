"""A new measure in one module, as a user would add one: the mean final confidence per cell.

Importing this module registers it; nothing else in the analysis is edited. The registry's
test (test_registry.py) imports it, finds it in every output, and unregisters it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mindshift.analysis import cell_stats, ensure_prepared
from mindshift.analysis.measures.registry import FigureSpec, HeadlineRow, Measure, register

KEY = "final_confidence"


def final_confidence(
    trials: pd.DataFrame, by: Sequence[str] = ("display", "advice")
) -> pd.DataFrame:
    """Mean final probability of the initially chosen option per model x `by` cell."""
    rows = ensure_prepared(trials)
    return cell_stats(rows, rows["final_prob_initial"], by)


MEASURE = register(
    Measure(
        key=KEY,
        title="Final confidence",
        function=final_confidence,
        cells=("display", "advice"),
        intervals=True,
        caption="Mean final probability of the initially chosen option, per display and advice.",
        figure=FigureSpec(
            "final_confidence.png",
            "bars",
            "Final confidence in the initially chosen option by display and advice.",
            title="Final confidence (mean, 95 % CI clustered by item)",
            ylabel="final confidence",
        ),
        headline=(
            HeadlineRow(
                "final confidence, hidden / opposite",
                (("display", "hidden"), ("advice", "opposite")),
            ),
        ),
    )
)
