"""The tidy trials schema: the columns a file to import has, and the ones an export writes.

One row per answered later turn, as in trials.parquet (`harness.trials_table`): the engine's
columns, then the paradigm's own (`Paradigm.Columns`). docs/trials-schema.md documents every
column; this module is what the importer checks, so the two are kept equal by a test.

The file needs fewer columns than trials.parquet holds: ids are generated, flags that follow
from the answers (correct or not, changed or not) are computed, and the optional columns have
defaults. A column the file has is checked, never silently replaced.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Final, Literal, Union, get_args, get_origin

from mindshift.harness.config import ReadoutChoice
from mindshift.harness.paradigm import Paradigm
from mindshift.harness.readouts import CHOICE_ONLY
from mindshift.harness.trials_table import COLUMNS as ENGINE_COLUMNS

REQUIRED: Final = (
    "model",
    "item_id",
    "correct",
    "initial_choice",
    "initial_confidence",
    "final_choice",
)
"""Columns every file must have (a cell of initial_confidence may be empty only where no
confidence was read: a choice-only or censored readout)."""
FINAL_PROBABILITIES: Final = ("final_prob_initial", "final_confidence")
"""At least one of these: the final probability of the turn-1 answer, or of the final one
(each follows from the other where the answer did not change, or with two options)."""
CONDITION: Final = "condition"
"""Required, unless the rows have the change-of-mind design factors it is named from."""
DERIVED: Final = ("initial_correct", "final_correct", "changed_mind")
"""Computed from the choices; a file that has them must agree."""
IDS: Final = ("trial_id", "initial_trial_id")
"""Generated from each row's identity when absent (`harness.trial_ids`)."""
LABELS: Final = "labels"
"""Import only: the option labels in order, separated by `LABEL_SEPARATOR` (default: the
first `n_options` capital letters, A, B, ..., as mindshift's domains label them)."""
LABEL_SEPARATOR: Final = "|"
DEFAULT_OPTIONS: Final = 2
DEFAULT_TURN: Final = 2
READOUTS: Final = (*(name for name in get_args(ReadoutChoice) if name != "auto"), CHOICE_ONLY)
"""The allowed values of `readout` (`harness.config.ReadoutChoice`, and choices only)."""
PROBABILITY_TOLERANCE: Final = 1e-9
"""How far two statements of one probability may differ (the final confidence and the final
probability of the turn-1 answer of a trial that kept its answer; a turn-1 answer's
confidence in two rows): a file written with fewer digits still reads."""
IMPORT_EXPERIMENT: Final = "imported"
"""The experiment name generated trial ids are keyed on (with the paradigm's name)."""

_PROBABILITY_NAME: Final = re.compile(r"(^|_)(prob|confidence|accuracy)(_|$)")
"""A paradigm's number column named like a probability holds one: checked to be in [0, 1]."""

CellKind = Literal["text", "whole", "number", "flag"]


@dataclass(frozen=True)
class DeclaredColumn:
    """A column a paradigm adds (a field of its `Columns` model), as the importer reads it."""

    name: str
    kind: CellKind
    allowed: tuple[str, ...] | None
    """The values a text column may hold (a `Literal` field); None: any text."""
    nullable: bool
    """Whether a cell may be empty (the field allows None); a number's empty cell is NaN."""

    @property
    def probability(self) -> bool:
        return self.kind == "number" and _PROBABILITY_NAME.search(self.name) is not None

    @property
    def required(self) -> bool:
        """Whether a file must have the column: a text, whole number or flag that may not be
        empty (a number column is unknown, NaN, when absent)."""
        return not self.nullable and self.kind != "number"


def _declared(name: str, annotation: object) -> DeclaredColumn:
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else str
    allowed = None
    if get_origin(annotation) is Literal:
        allowed = tuple(str(value) for value in get_args(annotation))
        annotation = str
    kind: CellKind = (
        "flag"
        if annotation is bool
        else "whole"
        if annotation is int
        else "number"
        if annotation is float
        else "text"
    )
    return DeclaredColumn(name, kind, allowed, nullable)


def declared_columns(paradigm: type[Paradigm]) -> tuple[DeclaredColumn, ...]:
    """The columns `paradigm` adds to its trials, in its `Columns` model's order."""
    if paradigm.Columns is None:
        return ()
    return tuple(
        _declared(name, field.annotation) for name, field in paradigm.Columns.model_fields.items()
    )


def known_columns(paradigm: type[Paradigm]) -> tuple[str, ...]:
    """Every column the importer reads for `paradigm`: the engine's, `labels`, the paradigm's."""
    return (*ENGINE_COLUMNS, LABELS, *(column.name for column in declared_columns(paradigm)))
