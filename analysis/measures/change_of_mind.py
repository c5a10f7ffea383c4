"""Change-of-mind rates: how often the final choice differs from the initial one."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.data.prepare import answered
from analysis.measures.cells import cell_stats


def com_rates(trials: pd.DataFrame, by: Sequence[str] = ("display",)) -> pd.DataFrame:
    """Mean of `changed_mind` per model x `by` cell (columns `model, *by, n, mean, sem, se_item`).

    Every answered trial counts, with or without a confidence: models read without logprobs
    enter the change-of-mind measures too (docs/paradigm.md 3). An unprepared table is
    prepared first (`analysis.data.prepare.ensure_prepared`): under the answer-wrong control a
    change of mind is leaving the displayed answer.
    """
    rows = answered(trials)
    return cell_stats(rows, rows["changed_mind"].astype(float), by)
