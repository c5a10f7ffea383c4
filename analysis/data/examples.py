"""Which trials the report shows as examples: one answered trial per condition.

The choice is made on the trials table, which holds every answered later turn with its
turn-1 call's id, so choosing reads nothing more; only the chosen calls are then read from
calls.jsonl (`harness.transcripts.read_transcripts_of`), whose cost does not grow with the log.
The example of a condition is its first row in the table (the table is built from calls.jsonl
in the log's order) together with every other turn of the same chain (same model, condition,
repeat and turn-1 call: a protocol of more than two turns has a row per turn). A condition
none of whose trials was answered has no row and so no example; the trial browser
(`mindshift view`) shows its failures.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mindshift.harness.run_format import CallKey

FIRST_TURN = 1

_CHAIN = ["model", "condition", "repeat", "initial_trial_id"]
"""What the turns of one trial share in the trials table."""


@dataclass(frozen=True)
class ExampleChoice:
    """The calls of the example trials, and the conditions in the order they first appear."""

    conditions: tuple[str, ...]
    keys: frozenset[CallKey]
    """(trial_id, turn) of every call of every chosen trial, turn 1 included."""


def choose_examples(trials: pd.DataFrame) -> ExampleChoice:
    """One answered trial per condition of a trials table as read (`RunData.raw_trials`),
    as the module docstring describes."""
    if trials.empty or not set(_CHAIN) | {"trial_id", "turn"} <= set(trials.columns):
        return ExampleChoice((), frozenset())
    firsts = trials.drop_duplicates("condition")[_CHAIN]
    chains = trials.merge(firsts, on=_CHAIN, how="inner")
    keys = {(str(tid), FIRST_TURN) for tid in firsts["initial_trial_id"]}
    turns = zip(chains["trial_id"], chains["turn"], strict=True)
    keys |= {(str(tid), int(turn)) for tid, turn in turns}
    return ExampleChoice(tuple(str(c) for c in firsts["condition"]), frozenset(keys))
