"""Turns: the rows of a trials table that the measures of one answer per condition read.

The trials table holds one row per answered later turn of an item under a condition (`turn`
2, 3, ...; a table written before turns existed is all turn 2, `analysis.data.schema`), each
carrying the item's turn-1 answer in its `initial_*` columns. A measure that reports one
number per condition (`analysis.measures.conditions`, `analysis.measures.sequences`) must
not pool the turns of a longer protocol: the answer after one challenge and after three are
different observations of the same trial. It reads each condition's last turn, where the
protocol leaves the model; the trajectory over turns is `analysis.measures.turns`.
"""

from __future__ import annotations

import pandas as pd

from mindshift.analysis.data.schema import TWO_TURN


def turns_of(trials: pd.DataFrame) -> pd.Series:
    """The `turn` of each row (a lean table without the column is a two-turn design)."""
    if "turn" in trials.columns:
        return trials["turn"]
    return pd.Series(TWO_TURN, index=trials.index, dtype="int64")


def last_turn(trials: pd.DataFrame) -> pd.DataFrame:
    """The rows at their condition's last turn: the highest turn the model reached under the
    condition (per model, since models pooled from runs of different lengths, `mindshift
    compare`, each have their own; the measures say which turn in their `turn` column).
    Every row of a two-turn protocol is at its last turn: the table is returned as it is."""
    turn = turns_of(trials)
    if trials.empty or turn.min() == turn.max():
        return trials
    keys = [trials["model"].to_numpy(), trials["condition"].to_numpy()]
    last = turn.groupby(keys, sort=False).transform("max")
    return trials.loc[turn.eq(last).to_numpy(bool)]
