"""Change-of-mind rates: how often the final choice differs from the initial one."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.cells import cell_stats
from analysis.prepare import ensure_prepared


def answered(trials: pd.DataFrame) -> pd.DataFrame:
    """The stage-2 trials that have a final choice (a failed call has none), prepared
    (`analysis.prepare.ensure_prepared`): every measure built on it (the CoM regression, the
    switching curves) reads framed, calibrated rows, and refuses a run's table as read."""
    rows = ensure_prepared(trials)
    choice = rows["final_choice"]
    return rows.loc[choice.notna() & choice.astype(str).str.len().gt(0)]


def com_rates(trials: pd.DataFrame, by: Sequence[str] = ("display",)) -> pd.DataFrame:
    """Mean of `changed_mind` per model x `by` cell (columns `model, *by, n, mean, sem, se_item`).

    Every answered trial counts, with or without a confidence: models read without logprobs
    enter the change-of-mind measures too (docs/paradigm.md 3). An unprepared table is
    prepared first (`analysis.prepare.ensure_prepared`): under the answer-wrong control a
    change of mind is leaving the displayed answer.
    """
    rows = answered(trials)
    return cell_stats(rows, rows["changed_mind"].astype(float), by)
