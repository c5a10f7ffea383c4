"""The trials table's columns, their types and the canonical order of the factor levels.

`validate_trials` is the single gate every table passes through before analysis (the loader
calls it, and so does `summarise`), so the measures can rely on dtypes instead of re-checking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import pandas as pd

from analysis.errors import AnalysisInputError

STR_COLUMNS: Final = (
    "trial_id",
    "initial_trial_id",
    "model",
    "item_id",
    "correct",
    "condition",
    "display",
    "advice",
    "initial_choice",
    "final_choice",
)
INT_COLUMNS: Final = ("repeat", "n_options")
FLOAT_COLUMNS: Final = ("accuracy", "initial_confidence", "final_prob_initial")
BOOL_COLUMNS: Final = (
    "initial_correct",
    "changed_mind",
    "final_correct",
    "initial_censored",
    "final_censored",
)
TRIAL_COLUMNS: Final = STR_COLUMNS + INT_COLUMNS + FLOAT_COLUMNS + BOOL_COLUMNS
"""Every column the analysis requires of trials.parquet (one row per stage-2 trial)."""
OPTIONAL_FLOAT_COLUMNS: Final = (
    "initial_prob_advised",
    "initial_prob_displayed",
    "final_prob_displayed",
)
OPTIONAL_STR_COLUMNS: Final = ("displayed_choice", "advisors")
OPTIONAL_COLUMNS: Final = OPTIONAL_FLOAT_COLUMNS + OPTIONAL_STR_COLUMNS
"""Columns the harness writes since K options, the controls and multi-advice (see
harness/trials_table.py): a table without them (an older run, a hand-made table) gets them
as unknown (NaN / null), which the K-option Bayes baseline and the framing treat as such."""

STAGE1_COLUMNS: Final = ("trial_id", "model", "item_id", "correct", "choice")
"""Columns of the stage-1 table: one row per stage-1 call that produced a choice."""
STAGE1_EXTRA_COLUMNS: Final = ("split", "probs", "correct_index", "choice_index")
"""Optional columns of the stage-1 table (`validate_stage1` fills them in when absent)."""
MAIN: Final = "main"
"""`split` of a main item's stage-1 call (its stage-2 trials are the experiment)."""
CALIBRATION: Final = "calibration"
"""`split` of a calibration item's stage-1 call (held out, stage 1 only)."""

MAIN_DISPLAYS: Final = ("shown", "hidden", "other")
"""The paper's main displays: the update fits use these (the controls are reported per cell)."""
CONTROL_DISPLAYS: Final = ("answer-wrong", "in-context")
"""The paper's controls: a wrong answer displayed as the model's own; both turns in one call."""
OWN_DISPLAYS: Final = ("shown", "answer-wrong", "in-context")
"""Displays that present an answer as the model's own (choice support can act on them)."""
DISPLAYS: Final = MAIN_DISPLAYS + CONTROL_DISPLAYS
"""Display conditions in the order tables and figures use."""
ADVICE_TYPES: Final = ("same", "opposite", "neutral")
"""Advice types in the order tables and figures use."""


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


def _coerce(column: pd.Series, name: str) -> pd.Series:
    if name in STR_COLUMNS:
        return _as_str(column)
    if name in INT_COLUMNS:
        return pd.to_numeric(column).astype(np.int64)
    if name in FLOAT_COLUMNS:
        return pd.to_numeric(column).astype(np.float64)
    # Nullable booleans (a failed call) read as False: such rows have no final choice and are
    # dropped by every measure that uses these flags.
    return column.astype("boolean").fillna(False).astype(bool)


def validate_trials(trials: pd.DataFrame, *, source: str = "trials table") -> pd.DataFrame:
    """A copy of `trials` with every contract column present and of the contract type.

    Raises `AnalysisInputError` naming the missing columns, or an unparseable column; the
    OPTIONAL_COLUMNS are added as unknown when absent; extra columns pass through untouched.
    """
    missing = [name for name in TRIAL_COLUMNS if name not in trials.columns]
    if missing:
        raise AnalysisInputError(f"{source} lacks column(s): {', '.join(missing)}")
    out = trials.copy()
    for name in OPTIONAL_FLOAT_COLUMNS:
        if name not in out.columns:
            out[name] = np.nan
    for name in OPTIONAL_STR_COLUMNS:
        if name not in out.columns:
            out[name] = pd.Series([None] * len(out), index=out.index, dtype=object)
    for name in OPTIONAL_FLOAT_COLUMNS:
        try:
            out[name] = pd.to_numeric(out[name]).astype(np.float64)
        except (TypeError, ValueError) as error:
            raise AnalysisInputError(
                f"{source}: column {name!r} is not numeric ({error})"
            ) from error
    for name in OPTIONAL_STR_COLUMNS:
        out[name] = _as_str(out[name])
    for name in TRIAL_COLUMNS:
        try:
            out[name] = _coerce(out[name], name)
        except (TypeError, ValueError) as error:
            raise AnalysisInputError(
                f"{source}: column {name!r} is not of its contract type ({error})"
            ) from error
    return out.reset_index(drop=True)


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
