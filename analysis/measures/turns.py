"""Turn by turn: the change-of-mind and confidence trajectories of any protocol.

A protocol of more than two turns asks the model again and again: flip-flop repeats one
challenge round after round, sequential advice adds one advisor per turn. Each later turn's
answer is a row of the trials table (`turn` 2, 3, ...) that carries the item's turn-1 answer.
Per model x condition x turn this measure gives:
- `n`, `n_items`: the answers at that turn (turn 1: the turn-1 answers of the trials that
  reached turn 2 in that condition), and their questions;
- `com_rate`: the share whose answer differs from turn 1's (0 at turn 1), with its
  item-clustered 95 % interval;
- `confidence_initial`: the mean confidence in the turn-1 answer (turn 1: the initial
  confidence, where the trajectory starts; later: the final probability of the initially
  chosen option), with its interval, over the `n_with_confidence` answers that have one;
- `final_confidence`: the mean confidence in the answer given at that turn;
- `bayes_post`: the mean ideal observer's posterior of the turn-1 answer, where the rows carry
  the Bayes baseline of their advice (`analysis.engines.bayes.with_bayes`; sequential
  advice's row at turn k + 1 carries the k advisors heard so far, so this is the posterior
  after them), starting from the same initial confidence at turn 1; NaN for a protocol whose
  turns carry no advice (flip-flop, are-you-sure);
- `flip_rate`: the share whose answer differs from the turn just before (NaN at turn 1; at
  turn 2 it is the CoM rate). A protocol that records it says so in a `flipped` column
  (flip-flop), which is used as it is; otherwise it is read from the previous turn's row.

Confidences are on the analysis's scale (temperature-scaled where applied), framed on the
initially chosen option as every measure is (`analysis.data.framing`). A two-turn protocol
gives two points per condition: its start and its one answer.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import answered, ensure_prepared
from mindshift.analysis.data.schema import TWO_TURN
from mindshift.analysis.data.turns import turns_of
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.registry import (
    FigureSpec,
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

TURN_COLUMNS: Final = (
    "model",
    "condition",
    "turn",
    "n",
    "n_items",
    "com_rate",
    "com_ci_low",
    "com_ci_high",
    "n_with_confidence",
    "confidence_initial",
    "confidence_ci_low",
    "confidence_ci_high",
    "final_confidence",
    "bayes_post",
    "flip_rate",
)
FIRST_TURN: Final = 1
CHAIN: Final = ("model", "condition", "initial_trial_id")
"""What identifies one trial's chain of turns: its item's turn-1 call (which carries the item
and the repeat) under one condition."""
KEYS: Final = ["model", "condition", "turn"]


def previous_choices(rows: pd.DataFrame) -> pd.Series:
    """The answer each row's turn followed: turn 1's at turn 2, otherwise the answer of the
    same trial's row one turn earlier (null where that row is not in the table)."""
    turn = turns_of(rows).to_numpy(np.int64)
    previous = rows["initial_choice"].astype(object).where(turn <= FIRST_TURN + 1)
    if (turn > FIRST_TURN + 1).any():
        earlier = (
            rows[[*CHAIN, "final_choice"]]
            .assign(turn=turn + 1)
            .drop_duplicates([*CHAIN, "turn"], keep="last")
            .rename(columns={"final_choice": "_previous"})
        )
        found = rows[list(CHAIN)].assign(turn=turn).merge(earlier, on=[*CHAIN, "turn"], how="left")
        previous = previous.where(turn <= FIRST_TURN + 1, found["_previous"].to_numpy(object))
    return previous


def flips(rows: pd.DataFrame) -> pd.Series:
    """1.0 where a row's answer differs from the turn just before, 0.0 where it does not,
    NaN where that answer is unknown; a protocol's own `flipped` column where it has one."""
    previous = previous_choices(rows)
    derived = pd.Series(
        np.where(
            previous.notna(),
            (rows["final_choice"].to_numpy(object) != previous.to_numpy(object)).astype(float),
            np.nan,
        ),
        index=rows.index,
    )
    if "flipped" not in rows.columns:
        return derived
    stated = rows["flipped"].map({True: 1.0, False: 0.0}).astype(np.float64)
    return stated.where(stated.notna(), derived)


def _cells(frame: pd.DataFrame, value: str, prefix: str) -> pd.DataFrame:
    stats = cell_stats(frame, frame[value], ("condition", "turn"))
    renamed = {"mean": value, "ci_low": f"{prefix}_ci_low", "ci_high": f"{prefix}_ci_high"}
    return stats.rename(columns=renamed)[[*KEYS, "n", "n_items", *renamed.values()]]


def _means(frame: pd.DataFrame, values: list[str]) -> pd.DataFrame:
    """Plain means per model x condition x turn (NaN left out; NaN where none is known)."""
    return frame.groupby(KEYS, sort=False)[values].mean().reset_index()


def turn_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model x condition x turn (TURN_COLUMNS; see the module doc), turn 1 first.

    An unprepared table is prepared first (`analysis.data.prepare.ensure_prepared`).
    """
    rows = answered(ensure_prepared(trials))
    if rows.empty:
        return pd.DataFrame(columns=list(TURN_COLUMNS))
    # Text keys as integer codes: a million-trial run's turn 1 doubles the rows, and grouping
    # them by text took most of the time. The labels come back at the end.
    model, models = pd.factorize(rows["model"])
    condition, conditions = pd.factorize(rows["condition"])
    item = pd.factorize(rows["item_id"])[0]
    chain = pd.factorize(rows["initial_trial_id"])[0]
    unknown = np.full(len(rows), np.nan)
    later = pd.DataFrame(
        {
            "model": model,
            "condition": condition,
            "turn": turns_of(rows).to_numpy(np.int64),
            "item_id": item,
            "com_rate": rows["changed_mind"].to_numpy(np.float64),
            "confidence_initial": rows["final_prob_initial"].to_numpy(np.float64),
            "final_confidence": rows["final_confidence"].to_numpy(np.float64)
            if "final_confidence" in rows.columns
            else unknown,
            "bayes_post": rows["bayes_post"].to_numpy(np.float64)
            if "bayes_post" in rows.columns
            else unknown,
            "flip_rate": flips(rows).to_numpy(np.float64),
        }
    )
    # Turn 1, where every trajectory starts: each trial's turn-1 answer, once per condition.
    # The ideal observer starts from the same confidence, in the conditions whose later turns
    # have a Bayes baseline.
    first = ~pd.DataFrame({"m": model, "c": condition, "t": chain}).duplicated().to_numpy(bool)
    cell = model * len(conditions) + condition
    baseline = np.zeros(len(models) * len(conditions), dtype=bool)
    baseline[cell[np.isfinite(later["bayes_post"].to_numpy(np.float64))]] = True
    initial = rows["initial_confidence"].to_numpy(np.float64)[first]
    start = pd.DataFrame(
        {
            "model": model[first],
            "condition": condition[first],
            "turn": FIRST_TURN,
            "item_id": item[first],
            "com_rate": 0.0,
            "confidence_initial": initial,
            "final_confidence": initial,
            "bayes_post": np.where(baseline[cell[first]], initial, np.nan),
            "flip_rate": np.nan,
        }
    )
    points = pd.concat([start, later], ignore_index=True)
    com = _cells(points, "com_rate", "com")
    confidence = _cells(points, "confidence_initial", "confidence").rename(
        columns={"n": "n_with_confidence"}
    )
    table = com.merge(confidence.drop(columns="n_items"), on=KEYS, how="left").merge(
        _means(points, ["final_confidence", "bayes_post", "flip_rate"]), on=KEYS, how="left"
    )
    table["model"] = np.asarray(models, dtype=object)[table["model"].to_numpy(np.int64)]
    table["condition"] = np.asarray(conditions, dtype=object)[table["condition"].to_numpy(np.int64)]
    table["n_with_confidence"] = table["n_with_confidence"].fillna(0).astype(np.int64)
    table = table.sort_values(KEYS, kind="stable")
    return table[list(TURN_COLUMNS)].reset_index(drop=True)


def _turn_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `turns`: {condition: {turn: {n, n_items, com_rate, com_ci95,
    n_with_confidence, confidence_initial, confidence_ci95, final_confidence,
    bayes_posterior, flip_rate}}}, turns as text keys ("1", "2", ...)."""
    nested: dict[str, dict[str, Any]] = {}
    for _, row in model_rows(results.table("turns"), model).iterrows():
        nested.setdefault(str(row["condition"]), {})[str(int(row["turn"]))] = {
            "n": int(row["n"]),
            "n_items": int(row["n_items"]),
            "com_rate": row["com_rate"],
            "com_ci95": [row["com_ci_low"], row["com_ci_high"]],
            "n_with_confidence": int(row["n_with_confidence"]),
            "confidence_initial": row["confidence_initial"],
            "confidence_ci95": [row["confidence_ci_low"], row["confidence_ci_high"]],
            "final_confidence": row["final_confidence"],
            "bayes_posterior": row["bayes_post"],
            "flip_rate": row["flip_rate"],
        }
    return {"turns": nested}


def last_turn(results: MeasureResults) -> int:
    """The highest turn of the results' trials (2 for a two-turn protocol, and for none)."""
    turns = results.table("turns")
    return int(turns["turn"].max()) if not turns.empty else TWO_TURN


def beyond_two_turns(results: MeasureResults) -> bool:
    """Whether any answer of the results came after turn 2: the report draws the
    trajectories only then (a two-turn protocol's are its change-of-mind tables)."""
    return last_turn(results) > TWO_TURN


register(
    Measure(
        key="turns",
        title="Turn by turn",
        function=turn_table,
        compute=on_trials(turn_table),
        caption="Per condition and turn, for any protocol: the change-of-mind rate (the answer "
        "differs from turn 1's), the mean confidence in the turn-1 answer (at turn 1 the "
        "initial confidence, where the trajectory starts), the mean confidence in the answer "
        "given, the mean Bayes posterior of the turn-1 answer where the protocol's turns carry "
        "advice (after the advisors heard so far), and the flip rate (the answer differs from "
        "the turn just before).",
        summary=_turn_entries,
        scale="number",
        figure=FigureSpec(
            "turns.png",
            "trajectories",
            "Confidence in the turn-1 answer by turn, a line per condition and a panel per "
            "model; dashed, in the same colour: the Bayes posterior, where the protocol "
            "defines one.",
            title="Confidence in the turn-1 answer by turn\n(mean, 95 % CI clustered by item; "
            "dashed: Bayes)",
            ylabel="confidence in the turn-1 answer",
            drawn_when=beyond_two_turns,
        ),
    )
)
