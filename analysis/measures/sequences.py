"""Sequences of advisors (`multi-advice`): each sequence against the Bayes baseline.

A trial of the `multi-advice` protocol hears several advisors in turn, each with its stated
accuracy and direction (relative to the model's own answer). The ideal observer's log-odds
add up over the sequence, logit(post) = logit(c) + sum_k Delta_k (for two options
sum_k s_k logit(a_k); `analysis.engines.bayes.sequence_posterior`). Per model and sequence (a
condition): the change-of-mind rate, the mean final confidence in the initially chosen
option, the mean Bayes posterior and the OUCS (their difference, positive = overconfident),
each with an item-clustered 95 % interval.

`sequential-advice` hears the same advisors one per turn, answering after each: its sequence
is complete at the condition's last turn, which is what this table reads
(`analysis.data.turns.last_turn`); the posterior after each advisor is in
`analysis.measures.turns`.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

from mindshift.analysis.data.prepare import answered, ensure_prepared
from mindshift.analysis.data.turns import last_turn
from mindshift.analysis.engines.bayes import parse_advisors
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.registry import (
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

SEQUENCE_COLUMNS: Final = (
    "model",
    "condition",
    "sequence",
    "advisors",
    "n",
    "n_items",
    "com_rate",
    "com_ci_low",
    "com_ci_high",
    "final_confidence",
    "bayes_post",
    "oucs",
    "oucs_ci_low",
    "oucs_ci_high",
)


def describe_sequence(advisors_json: str) -> str:
    """A sequence in words, e.g. "same@0.70 > opposite@0.90" (advice@stated accuracy)."""
    return " > ".join(f"{kind}@{a:.2f}" for kind, a, _, _ in parse_advisors(advisors_json))


def sequence_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model x condition of the trials with a sequence of advisors (SEQUENCE_COLUMNS),
    after the whole sequence: at the condition's last turn (sequential advice's earlier turns
    have heard only part of it).

    Empty when no trial has one (any paradigm but multi-advice and sequential advice). An
    unprepared table is prepared first (`analysis.data.prepare.ensure_prepared`).
    """
    rows = answered(ensure_prepared(trials))
    rows = rows.loc[rows["advisors"].notna()] if "advisors" in rows.columns else rows.iloc[:0]
    rows = last_turn(rows)
    if rows.empty:
        return pd.DataFrame(columns=list(SEQUENCE_COLUMNS))
    by = ("condition",)
    com = cell_stats(rows, rows["changed_mind"].astype(float), by)
    final = cell_stats(rows, rows["final_prob_initial"], by)
    bayes = cell_stats(rows, rows["bayes_post"], by)
    oucs = cell_stats(rows, rows["final_prob_initial"] - rows["bayes_post"], by)
    first = rows.drop_duplicates(["model", "condition"])[["model", "condition", "advisors"]]
    keys = ["model", "condition"]
    table = (
        com[[*keys, "n", "n_items", "mean", "ci_low", "ci_high"]]
        .rename(columns={"mean": "com_rate", "ci_low": "com_ci_low", "ci_high": "com_ci_high"})
        .merge(final[[*keys, "mean"]].rename(columns={"mean": "final_confidence"}), how="left")
        .merge(bayes[[*keys, "mean"]].rename(columns={"mean": "bayes_post"}), how="left")
        .merge(
            oucs[[*keys, "mean", "ci_low", "ci_high"]].rename(
                columns={"mean": "oucs", "ci_low": "oucs_ci_low", "ci_high": "oucs_ci_high"}
            ),
            how="left",
        )
        .merge(first, on=keys, how="left")
    )
    table["sequence"] = table["advisors"].map(describe_sequence)
    table["advisors"] = table["advisors"].map(lambda text: len(parse_advisors(text)))
    return table[list(SEQUENCE_COLUMNS)].reset_index(drop=True)


def _sequence_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `sequences` ({condition: {sequence, n, com_rate, final_confidence,
    bayes_posterior, oucs, ...}}), for a model that heard sequences of advisors."""
    rows = model_rows(results.table("sequences"), model)
    if rows.empty:
        return {}
    return {
        "sequences": {
            str(row["condition"]): {
                "sequence": row["sequence"],
                "advisors": int(row["advisors"]),
                "n": int(row["n"]),
                "com_rate": row["com_rate"],
                "final_confidence": row["final_confidence"],
                "bayes_posterior": row["bayes_post"],
                "oucs": row["oucs"],
                "oucs_ci95": [row["oucs_ci_low"], row["oucs_ci_high"]],
            }
            for _, row in rows.iterrows()
        }
    }


register(
    Measure(
        key="sequences",
        title="Sequences of advisors",
        function=sequence_table,
        compute=on_trials(sequence_table),
        caption="Per sequence of advisors (multi-advice; sequential advice at its last turn, "
        "once every advisor has spoken): the change-of-mind rate, the final confidence, the "
        "Bayes posterior of the summed shifts and their difference (OUCS).",
        summary=_sequence_entries,
    )
)
