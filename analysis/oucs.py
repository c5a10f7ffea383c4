"""OUCS, the over/under-confidence score: final confidence minus the Bayes posterior.

Both are probabilities of the initially chosen option; positive means more confident in the
initial choice than an ideal observer would be after the same advice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.bayes import with_bayes
from analysis.cells import cell_stats


def oucs(trials: pd.DataFrame, by: Sequence[str] = ("display", "advice")) -> pd.DataFrame:
    """Mean OUCS per model x `by` cell (columns `model, *by, n, mean, sem, se_item`)."""
    rows = trials if "bayes_post" in trials.columns else with_bayes(trials)
    return cell_stats(rows, rows["final_prob_initial"] - rows["bayes_post"], by)
