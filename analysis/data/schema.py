"""The trials table's columns, their types and the canonical order of the factor levels.

trials.parquet has two owners, and this module follows both rather than restating them:
- the engine (`harness.trials_table.COLUMNS`): what every protocol's rows have (ids, the
  turn, the answers and their confidences). They are the required core, but for the few a
  table written before them lacks (`ENGINE_DEFAULTS`: a table without `turn` holds the one
  later turn of a two-turn protocol, turn 2).
- the paradigm (`Paradigm.Columns`): the columns it adds. The measures of change-of-mind's
  display x advice x accuracy design, and the Bayes baseline of advice, read the advice
  protocols' columns (`paradigms.columns.AdviceColumns`). Their design factors
  (`ADVICE_FACTORS`) come together or not at all; the other advice columns came later and
  are read as unknown when absent. A protocol that declares no advice columns (a plugin's,
  or a directory assembled by hand) gets them all as unknown: its trials have no display,
  advice or accuracy, as flip-flop's and are-you-sure's have none, so the measures of that
  design find no cells and the report says why (`has_advice_design`).

`validate_trials` is the single gate every table passes through before analysis (the loader
calls it, and so does `summarise`), so the measures can rely on dtypes instead of re-checking.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd

from mindshift.analysis.errors import AnalysisInputError
from mindshift.harness.paradigm import TrialColumns
from mindshift.harness.trials_table import COLUMNS as ENGINE_COLUMNS
from mindshift.paradigms.columns import AdviceColumns
from mindshift.paradigms.facts import OWN_DISPLAYS as PARADIGM_OWN_DISPLAYS
from mindshift.paradigms.facts import AdviceKind, Display

Kind = Literal["str", "int", "float", "bool", "object"]
"""How a column is typed: text (missing stays missing), int64, float64 (unknown is NaN), bool
(a missing flag reads False), or passed through as it is."""

ENGINE_KINDS: Final[Mapping[str, Kind]] = {
    "trial_id": "str",
    "initial_trial_id": "str",
    "model": "str",
    "repeat": "int",
    "item_id": "str",
    "correct": "str",
    "n_options": "int",
    "condition": "str",
    "turn": "int",
    "readout": "str",
    "initial_choice": "str",
    "initial_confidence": "float",
    "initial_correct": "bool",
    "initial_censored": "bool",
    "initial_outside_mass": "float",
    "final_choice": "str",
    "final_confidence": "float",
    "final_prob_initial": "float",
    "changed_mind": "bool",
    "final_correct": "bool",
    "final_censored": "bool",
    "final_outside_mass": "float",
}
"""The type of each of the engine's columns (`harness.trials_table.COLUMNS`, which names them
without types; tests/analysis/test_schema.py keeps the two lists equal)."""

TWO_TURN: Final = 2
"""The turn of every row of a table written before `turn` existed (two-turn protocols)."""
LOGPROBS: Final = "logprobs"
"""The readout of every row of a table written before readouts were stored (issue 10)."""
ENGINE_DEFAULTS: Final[Mapping[str, float | str]] = {
    "turn": TWO_TURN,
    "readout": LOGPROBS,
    "initial_outside_mass": math.nan,
    "final_confidence": math.nan,
    "final_outside_mass": math.nan,
}
"""The engine's columns a table written before them lacks, with the value they read as."""
TRIAL_COLUMNS: Final = tuple(name for name in ENGINE_COLUMNS if name not in ENGINE_DEFAULTS)
"""Every column the analysis requires of trials.parquet (one row per answered later turn):
the engine's, less those older tables lack (`ENGINE_DEFAULTS`)."""


def _kind(annotation: object) -> Kind:
    """The kind of a pydantic field's annotation (`X | None`: X's, but an optional int or
    flag is a float or passed through, since None must stay unknown)."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        if len(members) != 1:
            return "object"
        annotation = members[0]
    if get_origin(annotation) is Literal:
        values = {type(value) for value in get_args(annotation)}
        annotation = values.pop() if len(values) == 1 else object
    if annotation is bool:
        return "object" if nullable else "bool"
    if annotation is int:
        return "float" if nullable else "int"
    if annotation is float:
        return "float"
    return "str" if annotation is str else "object"


def column_kinds(columns: type[TrialColumns]) -> dict[str, Kind]:
    """The kind of every column a paradigm's `Columns` model declares."""
    return {name: _kind(field.annotation) for name, field in columns.model_fields.items()}


ADVICE_KINDS: Final[Mapping[str, Kind]] = column_kinds(AdviceColumns)
"""The advice protocols' columns (`paradigms.columns.AdviceColumns`) and their kinds."""
ADVICE_FACTORS: Final = ("display", "advice", "accuracy")
"""The advice columns that are change-of-mind's design factors: a table has all or none."""
OPTIONAL_COLUMNS: Final = tuple(name for name in ADVICE_KINDS if name not in ADVICE_FACTORS)
"""Advice columns the harness writes since K options, the controls and multi-advice: a table
without them (an older run, a hand-made table) gets them as unknown (NaN / null), which the
K-option Bayes baseline and the framing treat as such."""

STAGE1_COLUMNS: Final = ("trial_id", "model", "item_id", "correct", "choice")
"""Columns of the stage-1 table: one row per stage-1 call that produced a choice."""
STAGE1_EXTRA_COLUMNS: Final = ("split", "probs", "correct_index", "choice_index")
"""Optional columns of the stage-1 table (`validate_stage1` fills them in when absent)."""
MAIN: Final = "main"
"""`split` of a main item's stage-1 call (its stage-2 trials are the experiment)."""
CALIBRATION: Final = "calibration"
"""`split` of a calibration item's stage-1 call (held out, stage 1 only)."""

DISPLAYS: Final[tuple[str, ...]] = get_args(Display)
"""Display conditions in the order tables and figures use (the advice protocols' `Display`)."""
ADVICE_TYPES: Final[tuple[str, ...]] = get_args(AdviceKind)
"""Advice types in the order tables and figures use (the advice protocols' `AdviceKind`)."""
OWN_DISPLAYS: Final[tuple[str, ...]] = PARADIGM_OWN_DISPLAYS
"""Displays that present an answer as the model's own (choice support can act on them)."""
MAIN_DISPLAYS: Final = ("shown", "hidden", "other")
"""The paper's main displays: the update fits use these (the controls are reported per cell)."""
CONTROL_DISPLAYS: Final = tuple(display for display in DISPLAYS if display not in MAIN_DISPLAYS)
"""The paper's controls (a wrong answer displayed as the model's own; both turns in one call)."""


def canonical_order(values: Iterable[str], canonical: Sequence[str]) -> list[str]:
    """Distinct `values`, the known ones in `canonical` order, then any others sorted.

    Unknown levels are kept rather than rejected so that a new display or advice type added by
    a future paradigm shows up in the output instead of silently vanishing.
    """
    # A column's distinct values first: a million rows, a handful of levels.
    distinct = values.unique() if isinstance(values, pd.Series | pd.Index) else values
    present = {str(v) for v in distinct}
    known = [level for level in canonical if level in present]
    return known + sorted(present.difference(canonical))


def accuracy_key(accuracy: float) -> str:
    """The JSON key of an advice accuracy: two decimals, as in the condition names ("0.70")."""
    return f"{accuracy:.2f}"


def _as_str(column: pd.Series) -> pd.Series:
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return column  # the common case, already text: skip the per-value conversion
    # Missing stays missing: `astype(str)` would turn None into "None" on pandas 2.
    values = column.astype(object)
    mask = values.notna()
    values[mask] = values[mask].map(str)
    return values


def _coerce(column: pd.Series, kind: Kind) -> pd.Series:
    if kind == "str":
        return _as_str(column)
    if kind == "int":
        return pd.to_numeric(column).astype(np.int64)
    if kind == "float":
        return pd.to_numeric(column).astype(np.float64)
    if kind == "bool":
        # Nullable booleans (a failed call) read as False: such rows have no final choice and
        # are dropped by every measure that uses these flags.
        return column.astype("boolean").fillna(False).astype(bool)
    return column


def _unknown(kind: Kind, length: int, index: pd.Index) -> pd.Series:
    if kind == "float":
        return pd.Series(np.nan, index=index, dtype=np.float64)
    return pd.Series([None] * length, index=index, dtype=object)


def validate_trials(trials: pd.DataFrame, *, source: str = "trials table") -> pd.DataFrame:
    """A copy of `trials` with every column the analysis reads present and of its type.

    Raises `AnalysisInputError` naming the missing columns (of the engine's core, or of the
    advice design factors when only some are present), or a column that cannot be typed. The
    engine's later columns are added as `ENGINE_DEFAULTS` says and absent advice columns as
    unknown (see the module doc); extra columns (a paradigm's own) pass through untouched.
    """
    missing = [name for name in TRIAL_COLUMNS if name not in trials.columns]
    factors = [name for name in ADVICE_FACTORS if name in trials.columns]
    if factors and len(factors) < len(ADVICE_FACTORS):
        missing += [name for name in ADVICE_FACTORS if name not in factors]
    if missing:
        raise AnalysisInputError(
            f"{source} lacks column(s): {', '.join(missing)}"
            + (
                f" (the advice design factors {', '.join(ADVICE_FACTORS)} come together)"
                if any(name in ADVICE_FACTORS for name in missing)
                else ""
            )
        )
    out = trials.copy()
    for name, value in ENGINE_DEFAULTS.items():
        if name not in out.columns:
            out[name] = value
    for name, kind in ADVICE_KINDS.items():
        if name not in out.columns:
            out[name] = _unknown(kind, len(out), out.index)
    for name, kind in (*ENGINE_KINDS.items(), *ADVICE_KINDS.items()):
        try:
            out[name] = _coerce(out[name], kind)
        except (TypeError, ValueError) as error:
            raise AnalysisInputError(
                f"{source}: column {name!r} is not of its contract type ({error})"
            ) from error
    return out.reset_index(drop=True)


def has_advice_design(trials: pd.DataFrame) -> bool:
    """Whether any trial has an advice factor: change-of-mind's display x advice x accuracy
    design, whose measures need the advice columns (`paradigms.columns.AdviceColumns`)."""
    return "advice" in trials.columns and bool(trials["advice"].notna().any())


def validate_stage1(stage1: pd.DataFrame, *, source: str = "stage-1 table") -> pd.DataFrame:
    """A copy of a stage-1 table with every column of STAGE1_COLUMNS + STAGE1_EXTRA_COLUMNS.

    The required columns must be present; the optional ones default to a main-split call
    with unknown probabilities, so a hand-made table of choices alone is still valid.
    """
    missing = [name for name in STAGE1_COLUMNS if name not in stage1.columns]
    if missing:
        raise AnalysisInputError(f"{source} lacks column(s): {', '.join(missing)}")
    defaults: dict[str, object] = {
        "split": MAIN,
        "probs": None,
        "correct_index": -1,
        "choice_index": -1,
    }
    out = stage1.copy()
    for name, value in defaults.items():
        if name not in out.columns:
            out[name] = pd.Series([value] * len(out), index=out.index, dtype=object)
    for name in STAGE1_COLUMNS:
        out[name] = _as_str(out[name])
    out[["correct_index", "choice_index"]] = out[["correct_index", "choice_index"]].astype(np.int64)
    return out.reset_index(drop=True)


def model_ids(table: pd.DataFrame) -> list[str]:
    """The distinct model ids of a table, sorted (without a Python loop over its rows)."""
    return sorted(str(model) for model in pd.unique(table["model"].dropna()))
