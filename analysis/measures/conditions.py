"""Measures by condition, for any paradigm: change-of-mind rate, confidence change and OUCS.

Every paradigm's stage-2 conditions have a name (part of the trial id) but not necessarily
the display / advice / accuracy factors of change-of-mind (`are-you-sure` has a challenge
wording, `multi-advice` a sequence of advisors). The condition is the one factor every trial
has, so this table is what the analysis reports for any protocol. A protocol of more than
two turns answers several times per condition: the table reads each condition's last turn
(`analysis.data.turns.last_turn`: where the protocol leaves the model, in its `turn` column),
rather than pooling answers given after one challenge with those given after three; the
per-turn trajectory is `analysis.measures.turns`.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import answered, ensure_prepared
from mindshift.analysis.data.turns import last_turn, turns_of
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.confidence_change import observed_update
from mindshift.analysis.measures.registry import (
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

CONDITION_COLUMNS: Final = (
    "model",
    "condition",
    "turn",
    "n",
    "n_items",
    "com_rate",
    "com_ci_low",
    "com_ci_high",
    "n_with_confidence",
    "confidence_change",
    "change_ci_low",
    "change_ci_high",
    "oucs",
    "oucs_ci_low",
    "oucs_ci_high",
)


def _cells(table: pd.DataFrame, prefix: str, value: str) -> pd.DataFrame:
    renamed = {"mean": value, "ci_low": f"{prefix}_ci_low", "ci_high": f"{prefix}_ci_high"}
    return table.rename(columns=renamed)[["model", "condition", *renamed.values()]]


def condition_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model x condition (CONDITION_COLUMNS), at the condition's last turn (`turn`):
    counts, CoM rate, confidence change, OUCS, each mean with its item-clustered 95 %
    interval; NaN where a measure has no data.

    `n` counts answered trials (the CoM rate's), `n_with_confidence` those with both
    confidences (the confidence change's). The CoM rate and the confidence change compare
    the last turn's answer with turn 1's. An unprepared table is prepared first
    (`analysis.data.prepare.ensure_prepared`).
    """
    rows = last_turn(answered(ensure_prepared(trials)))
    com = cell_stats(rows, rows["changed_mind"].astype(float), ("condition",))
    if com.empty:
        return pd.DataFrame(columns=list(CONDITION_COLUMNS))
    change = cell_stats(rows, observed_update(rows), ("condition",))
    oucs = cell_stats(rows, rows["final_prob_initial"] - rows["bayes_post"], ("condition",))
    table = (
        com[["model", "condition", "n", "n_items", "mean", "ci_low", "ci_high"]]
        .rename(columns={"mean": "com_rate", "ci_low": "com_ci_low", "ci_high": "com_ci_high"})
        .merge(
            change[["model", "condition", "n"]].rename(columns={"n": "n_with_confidence"}),
            on=["model", "condition"],
            how="left",
        )
        .merge(_cells(change, "change", "confidence_change"), on=["model", "condition"], how="left")
        .merge(_cells(oucs, "oucs", "oucs"), on=["model", "condition"], how="left")
    )
    table["n_with_confidence"] = table["n_with_confidence"].fillna(0).astype(np.int64)
    turns = (
        rows[["model", "condition"]]
        .assign(turn=turns_of(rows).to_numpy(np.int64))
        .drop_duplicates(["model", "condition"])
    )
    table = table.merge(turns, on=["model", "condition"], how="left")
    return table[list(CONDITION_COLUMNS)].reset_index(drop=True)


def _condition_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `by_condition`: {condition: {turn, n, com_rate, confidence_change, oucs,
    ...}}, at each condition's last turn."""
    keys = ("turn", "n", "n_items", "com_rate", "n_with_confidence", "confidence_change", "oucs")
    rows = model_rows(results.table("by_condition"), model)
    return {
        "by_condition": {
            str(row["condition"]): {key: row[key] for key in keys} for _, row in rows.iterrows()
        }
    }


register(
    Measure(
        key="by_condition",
        title="By condition",
        function=condition_table,
        compute=on_trials(condition_table),
        caption="Per condition, for any protocol, at the condition's last turn (a protocol of "
        "more than two turns is not pooled over its turns: its trajectory is under 'Turn by "
        "turn'): the change-of-mind rate and the confidence change from turn 1, and the OUCS "
        "where a Bayes posterior is defined.",
        summary=_condition_entries,
    )
)
