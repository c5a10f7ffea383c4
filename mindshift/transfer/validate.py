"""From the rows of a file to the trials table `mindshift analyse` reads, checking every cell.

`trials_from_source` parses each column (`mindshift.transfer.source`), fills in what follows
from the rest (`docs/trials-schema.md`: ids, the correct / changed flags, the probabilities a
two-option trial determines, the change-of-mind columns its display and advice determine),
and checks what the analysis relies on: one turn-1 answer per model, item and repeat, one
correct answer per item, one row per trial, choices among the options, probabilities in
[0, 1] and present wherever a confidence was read. The first problem found is a
`TransferError` of one line naming the row and the column; nothing is written before every
row has passed.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mindshift.harness.paradigm import Paradigm
from mindshift.harness.readouts import CHOICE_ONLY
from mindshift.harness.trial_ids import INITIAL_CONDITION, trial_id
from mindshift.harness.trials_table import table_columns
from mindshift.paradigms.columns import AdviceColumns
from mindshift.transfer.errors import TransferError
from mindshift.transfer.options import row_options
from mindshift.transfer.schema import (
    CONDITION,
    DEFAULT_TURN,
    DERIVED,
    FINAL_PROBABILITIES,
    IMPORT_EXPERIMENT,
    PROBABILITY_TOLERANCE,
    READOUTS,
    REQUIRED,
    DeclaredColumn,
    declared_columns,
    known_columns,
)
from mindshift.transfer.source import Cells, SourceTable, first, quoted

DESIGN_FACTORS = ("display", "advice", "accuracy")
"""Change-of-mind's design factors (`AdviceColumns`): a file has all three or none."""
SORT_ORDER = ["model", "item_id", "repeat", "condition", "turn"]
"""The engine's row order (`harness.trials_table.build_trials_table`)."""


@dataclass(frozen=True)
class ImportedTrials:
    """The trials table built from a file, and what of the file it did not read."""

    table: pd.DataFrame
    """The engine's columns and the paradigm's, typed as trials.parquet types them."""
    ignored: tuple[str, ...]
    """The file's columns the schema does not know (kept out of the table)."""


def trials_from_source(source: SourceTable, paradigm: type[Paradigm]) -> ImportedTrials:
    """The trials table of `source` under `paradigm`'s columns (see the module doc)."""
    ignored = _check_columns(source, paradigm)
    rows = _Rows(source, paradigm)
    table = rows.table()
    return ImportedTrials(table=table, ignored=ignored)


def _check_columns(source: SourceTable, paradigm: type[Paradigm]) -> tuple[str, ...]:
    """The columns the file lacks are an error; those it has beyond the schema are ignored,
    unless one looks like a misspelt column of the schema (then it is an error too)."""
    name = source.path.name
    declared = declared_columns(paradigm)
    needed = [
        *REQUIRED,
        *(column.name for column in declared if column.required),
    ]
    missing = [column for column in needed if not source.has(column)]
    if not any(source.has(column) for column in FINAL_PROBABILITIES):
        missing.append(" or ".join(FINAL_PROBABILITIES))
    factors = [column for column in DESIGN_FACTORS if source.has(column)]
    if not source.has(CONDITION) and len(factors) < len(DESIGN_FACTORS):
        missing.append(CONDITION)
    if missing:
        raise TransferError(
            f"{name} lacks column(s): {', '.join(missing)} (docs/trials-schema.md lists the "
            "columns of a trials file)"
        )
    if factors and len(factors) < len(DESIGN_FACTORS) and _advice(paradigm):
        absent = [column for column in DESIGN_FACTORS if column not in factors]
        raise TransferError(
            f"{name} has {', '.join(factors)} but not {', '.join(absent)}: the design factors "
            f"{', '.join(DESIGN_FACTORS)} come together"
        )
    known = known_columns(paradigm)
    extra = tuple(column for column in source.frame.columns if column not in known)
    for column in extra:
        close = difflib.get_close_matches(column, known, n=1, cutoff=0.85)
        if close:
            raise TransferError(f"{name}: unknown column {column!r} (did you mean {close[0]!r}?)")
    return extra


def _advice(paradigm: type[Paradigm]) -> bool:
    """Whether the paradigm's trials carry the advice columns (and their derivations)."""
    return paradigm.Columns is not None and issubclass(paradigm.Columns, AdviceColumns)


def _same(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Elementwise equality where missing equals missing (None or NaN)."""
    left_missing = pd.isna(left)
    right_missing = pd.isna(right)
    with np.errstate(invalid="ignore"):
        equal = np.asarray(left == right, dtype=bool)
    return np.asarray((left_missing & right_missing) | (~left_missing & ~right_missing & equal))


def _close(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Like `_same` for probabilities, within `PROBABILITY_TOLERANCE`."""
    both = ~np.isnan(left) & ~np.isnan(right)
    with np.errstate(invalid="ignore"):
        near = np.abs(left - right) <= PROBABILITY_TOLERANCE
    return np.asarray((np.isnan(left) & np.isnan(right)) | (both & near))


class _Rows:
    """The columns of one file, parsed and completed one step at a time."""

    def __init__(self, source: SourceTable, paradigm: type[Paradigm]) -> None:
        self.source = source
        self.paradigm = paradigm
        self.cells = Cells(source)
        self.size = len(source)
        self.columns: dict[str, Any] = {}

    def fail(self, position: int, column: str, why: str) -> TransferError:
        return self.source.problem(position, column, why)

    # -- the steps, in order ------------------------------------------------------------

    def table(self) -> pd.DataFrame:
        self._answers()
        self._options()
        self._counters()
        self._probabilities()
        self._flags()
        self._condition()
        self._paradigm_columns()
        self._identity()
        self._ids()
        frame = pd.DataFrame(
            {name: self.columns[name] for name in table_columns(self.paradigm)},
            index=pd.RangeIndex(self.size),
        )
        # The file's own row numbers are no longer needed: the engine's order from here on.
        return frame.sort_values(SORT_ORDER, kind="stable").reset_index(drop=True)

    def _required_text(self, name: str) -> np.ndarray:
        values = self.cells.text(name)
        empty = first(values.isna())
        if empty is not None:
            raise self.fail(empty, name, "is empty")
        return np.asarray(values.to_numpy(object), dtype=object)

    def _answers(self) -> None:
        for name in ("model", "item_id", "correct", "initial_choice", "final_choice"):
            self.columns[name] = self._required_text(name)

    def _options(self) -> None:
        """`n_options` and the labels of each row; every choice must be one of them."""
        self.options = row_options(self.source, self.cells)
        self.columns["n_options"] = self.options.counts
        for name in ("correct", "initial_choice", "final_choice"):
            self.options.check(name, self.columns[name])

    def _counters(self) -> None:
        cells = self.cells
        has = self.source.has
        self.columns["repeat"] = (
            cells.whole("repeat", default=0, low=0)
            if has("repeat")
            else np.zeros(self.size, np.int64)
        )
        self.columns["turn"] = (
            cells.whole("turn", default=DEFAULT_TURN, low=2)
            if has("turn")
            else np.full(self.size, DEFAULT_TURN, dtype=np.int64)
        )

    def _probability_or_unknown(self, name: str) -> np.ndarray:
        if self.source.has(name):
            return self.cells.probability(name)
        return np.full(self.size, np.nan)

    def _flag_or(self, name: str, default: bool) -> np.ndarray:
        if self.source.has(name):
            return self.cells.flag(name, default=default)
        return np.full(self.size, default, dtype=bool)

    def _probabilities(self) -> None:
        """The confidences, completed where one follows from the other, and the readout."""
        initial = self.cells.probability("initial_confidence")
        on_initial = self._probability_or_unknown("final_prob_initial")
        on_final = self._probability_or_unknown("final_confidence")
        stayed = self.columns["final_choice"] == self.columns["initial_choice"]
        two = self.columns["n_options"] == 2
        if self.source.has("final_prob_initial") and self.source.has("final_confidence"):
            bad = first(stayed & ~_close(on_initial, on_final))
            if bad is not None:
                raise self.fail(
                    bad,
                    "final_confidence",
                    f"{quoted(on_final[bad])} differs from final_prob_initial "
                    f"{quoted(on_initial[bad])}, "
                    "though the final answer is the turn-1 answer",
                )
        derived_initial = np.where(stayed, on_final, np.where(two, 1.0 - on_final, np.nan))
        derived_final = np.where(stayed, on_initial, np.where(two, 1.0 - on_initial, np.nan))
        on_initial = np.where(np.isnan(on_initial), derived_initial, on_initial)
        on_final = np.where(np.isnan(on_final), derived_final, on_final)

        censored_initial = self._flag_or("initial_censored", False)
        censored_final = self._flag_or("final_censored", False)
        if self.source.has("readout"):
            readout = self.cells.text("readout").to_numpy(object)
            unknown = first(~pd.isna(readout) & ~pd.Series(readout).isin(READOUTS).to_numpy(bool))
            if unknown is not None:
                raise self.fail(
                    unknown,
                    "readout",
                    f"unknown readout {quoted(readout[unknown])} (one of {', '.join(READOUTS)})",
                )
        else:
            readout = np.full(self.size, None, dtype=object)
        # A row that names no readout: token logprobs where a confidence was read, as the
        # engine names a record without one (`harness.trials_table`), else choices only.
        none_read = np.isnan(initial) & np.isnan(on_initial) & ~censored_initial & ~censored_final
        default = np.where(none_read, CHOICE_ONLY, "logprobs").astype(object)
        readout = np.where(pd.isna(readout), default, readout).astype(object)
        choice_only = readout == CHOICE_ONLY
        bad = first(np.isnan(on_initial) & ~np.isnan(on_final))
        if bad is not None:
            raise self.fail(
                bad,
                FINAL_PROBABILITIES[0],
                "is needed: with more than two options, the final confidence of a changed "
                "answer does not say the final probability of the turn-1 answer",
            )
        for name, values, censored in (
            ("initial_confidence", initial, censored_initial),
            (FINAL_PROBABILITIES[0], on_initial, censored_final),
        ):
            bad = first(np.isnan(values) & ~choice_only & ~censored)
            if bad is not None:
                where = name if self.source.has(name) else " / ".join(FINAL_PROBABILITIES)
                raise self.fail(
                    bad,
                    where,
                    "is empty, but the row's readout read a confidence (leave it empty only "
                    "for a choice-only readout or a censored one: readout, *_censored)",
                )
        self.columns.update(
            {
                "readout": readout,
                "initial_confidence": initial,
                "initial_censored": censored_initial,
                "initial_outside_mass": self._probability_or_unknown("initial_outside_mass"),
                "final_confidence": on_final,
                "final_prob_initial": on_initial,
                "final_censored": censored_final,
                "final_outside_mass": self._probability_or_unknown("final_outside_mass"),
            }
        )

    def _flags(self) -> None:
        """initial_correct, final_correct and changed_mind, from the choices; a file that
        states them must agree."""
        correct = self.columns["correct"]
        initial, final = self.columns["initial_choice"], self.columns["final_choice"]
        computed = {
            "initial_correct": initial == correct,
            "final_correct": final == correct,
            "changed_mind": final != initial,
        }
        for name in DERIVED:
            value = np.asarray(computed[name], dtype=bool)
            if self.source.has(name):
                stated = self.cells.flag(name, default=False)
                bad = first(self.cells.known(name) & (stated != value))
                if bad is not None:
                    raise self.fail(
                        bad,
                        name,
                        f"says {bool(stated[bad])}, but the choices say {bool(value[bad])} "
                        f"(correct {quoted(correct[bad])}, initial {quoted(initial[bad])}, "
                        f"final {quoted(final[bad])})",
                    )
            self.columns[name] = value

    def _condition(self) -> None:
        """The condition's name, or (without the column) change-of-mind's name of its design
        factors: display/advice/accuracy, as `shown/same/0.70`."""
        if self.source.has(CONDITION):
            self.columns[CONDITION] = self._required_text(CONDITION)
            return
        display = self._required_text("display")
        advice = self._required_text("advice")
        accuracy = self.cells.probability("accuracy")
        bad = first(np.isnan(accuracy))
        if bad is not None:
            raise self.fail(
                bad, "accuracy", "is empty, and there is no condition column to name the trial"
            )
        self.columns[CONDITION] = np.array(
            [f"{d}/{a}/{x:.2f}" for d, a, x in zip(display, advice, accuracy, strict=True)],
            dtype=object,
        )

    # -- the paradigm's columns ---------------------------------------------------------------

    def _declared(self, column: DeclaredColumn) -> np.ndarray:
        """A paradigm column as its field types it; absent, it is unknown (None / NaN)."""
        name = column.name
        if not self.source.has(name):
            if column.kind == "number":
                return np.full(self.size, np.nan)
            return np.full(self.size, None, dtype=object)
        if column.kind == "number":
            return self.cells.probability(name) if column.probability else self.cells.number(name)
        if column.kind == "whole":
            values = self.cells.number(name)
            if not column.nullable:
                bad = first(np.isnan(values))
                if bad is not None:
                    raise self.fail(bad, name, "is empty")
                return self.cells.whole(name, default=0, low=-(2**62))
            return values
        if column.kind == "flag":
            if not column.nullable:
                blank = first(self.cells.text(name).isna())
                if blank is not None:
                    raise self.fail(blank, name, "is empty")
            return self.cells.flag(name, default=False)
        values = self.cells.text(name).to_numpy(object)
        if not column.nullable:
            blank = first(pd.isna(values))
            if blank is not None:
                raise self.fail(blank, name, "is empty")
        if column.allowed is not None:
            outside = ~pd.isna(values) & ~pd.Series(values).isin(column.allowed).to_numpy(bool)
            bad = first(outside)
            if bad is not None:
                raise self.fail(
                    bad,
                    name,
                    f"unknown {name} {quoted(values[bad])} (one of {', '.join(column.allowed)})",
                )
        return np.asarray(values, dtype=object)

    def _paradigm_columns(self) -> None:
        declared = declared_columns(self.paradigm)
        for column in declared:
            self.columns[column.name] = self._declared(column)
        if _advice(self.paradigm):
            _AdviceRows(self).complete()

    # -- identity ------------------------------------------------------------------------------

    def _group_leaders(self, keys: Sequence[str]) -> np.ndarray:
        """For each row, the position of the first row with the same values of `keys`."""
        frame = pd.DataFrame({key: self.columns[key] for key in keys})
        codes = frame.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
        _, leaders = np.unique(codes, return_index=True)
        return np.asarray(leaders[codes], dtype=np.int64)

    def _agree(self, keys: Sequence[str], names: Sequence[str], what: str) -> None:
        leaders = self._group_leaders(keys)
        for name in names:
            values = np.asarray(self.columns[name])
            if values.dtype == np.float64:
                same = _close(values, values[leaders])
            else:
                same = _same(values, values[leaders])
            bad = first(~same)
            if bad is not None:
                other = self.source.row_name(int(leaders[bad]))
                raise self.fail(
                    bad,
                    name,
                    f"{quoted(values[bad])} differs from {quoted(values[leaders[bad]])} in "
                    f"{other}: {what}",
                )

    def _identity(self) -> None:
        """One row per trial; one turn-1 answer per model, item and repeat; one correct
        answer and one set of options per item."""
        key = ["model", "item_id", "repeat", CONDITION, "turn"]
        leaders = self._group_leaders(key)
        repeated = first(leaders != np.arange(self.size))
        if repeated is not None:
            raise TransferError(
                f"{self.source.path.name} {self.source.row_name(repeated)} repeats "
                f"{self.source.row_name(int(leaders[repeated]))}: the same model, item_id, "
                "repeat, condition and turn (one row per trial)"
            )
        self.columns["_labels_text"] = self.options.texts()
        self._agree(
            ["item_id"],
            ["correct", "n_options", "_labels_text"],
            "an item has one correct answer and one set of options",
        )
        self._agree(
            ["model", "item_id", "repeat"],
            ["initial_choice", "initial_confidence", "initial_censored", "initial_outside_mass"],
            "the rows of one model, item and repeat share one turn-1 answer",
        )
        del self.columns["_labels_text"]

    def _ids(self) -> None:
        """trial_id and initial_trial_id: as the file gives them, else generated from the
        row's identity (the same rows always get the same ids)."""
        name = self.paradigm.name
        model, item = self.columns["model"], self.columns["item_id"]
        repeat, turn, condition = (
            self.columns["repeat"],
            self.columns["turn"],
            self.columns[CONDITION],
        )
        given = (
            self.cells.text("trial_id").to_numpy(object)
            if self.source.has("trial_id")
            else np.full(self.size, None, dtype=object)
        )
        self.columns["trial_id"] = np.array(
            [
                stated
                if stated is not None
                else trial_id(
                    experiment=IMPORT_EXPERIMENT,
                    seed=0,
                    model=m,
                    paradigm=name,
                    item=i,
                    condition=c,
                    repeat=int(r),
                    stage=int(t),
                )
                for stated, m, i, c, r, t in zip(
                    given, model, item, condition, repeat, turn, strict=True
                )
            ],
            dtype=object,
        )
        given = (
            self.cells.text("initial_trial_id").to_numpy(object)
            if self.source.has("initial_trial_id")
            else np.full(self.size, None, dtype=object)
        )
        self.columns["initial_trial_id"] = np.array(
            [
                stated
                if stated is not None
                else trial_id(
                    experiment=IMPORT_EXPERIMENT,
                    seed=0,
                    model=m,
                    paradigm=name,
                    item=i,
                    condition=INITIAL_CONDITION,
                    repeat=int(r),
                    stage=1,
                )
                for stated, m, i, r in zip(given, model, item, repeat, strict=True)
            ],
            dtype=object,
        )
        leaders = self._group_leaders(["trial_id"])
        repeated = first(leaders != np.arange(self.size))
        if repeated is not None:
            raise self.fail(
                repeated,
                "trial_id",
                f"{quoted(self.columns['trial_id'][repeated])} is the id of "
                f"{self.source.row_name(int(leaders[repeated]))} too (one id per trial)",
            )
        self._agree(
            ["model", "item_id", "repeat"],
            ["initial_trial_id"],
            "the rows of one model, item and repeat share one turn-1 call",
        )
        self._agree(
            ["initial_trial_id"],
            ["model", "item_id", "repeat"],
            "rows that share a turn-1 call share its model, item and repeat",
        )


class _AdviceRows:
    """The advice protocols' columns (`AdviceColumns`): checked against the design, and
    completed where the display, the advice and two options determine them."""

    def __init__(self, rows: _Rows) -> None:
        self.rows = rows
        self.columns = rows.columns
        self.size = rows.size
        self.has = rows.source.has

    def complete(self) -> None:
        self._design()
        framed = self._displayed()
        self._advised(framed)
        self._advisors()

    def _design(self) -> None:
        display, advice, accuracy = (self.columns[name] for name in DESIGN_FACTORS)
        has_advice = ~pd.isna(advice)
        bad = first(has_advice & pd.isna(display))
        if bad is not None:
            raise self.rows.fail(
                bad, "display", f"is empty, but the row has {quoted(advice[bad])} advice"
            )
        evidence = has_advice & np.isin(advice.astype(str), ["same", "opposite"])
        bad = first(evidence & np.isnan(accuracy))
        if bad is not None:
            raise self.rows.fail(
                bad, "accuracy", f"is empty, but {advice[bad]} advice needs its stated accuracy"
            )

    def _displayed(self) -> np.ndarray:
        """displayed_choice, checked against the display, and the answer each trial is framed
        on (the displayed answer, else the turn-1 answer)."""
        display = self.columns["display"]
        initial, correct = self.columns["initial_choice"], self.columns["correct"]
        shown = self.columns["displayed_choice"]
        self.rows.options.check("displayed_choice", shown)
        given = ~pd.isna(shown)
        hidden = display == "hidden"
        bad = first(given & hidden)
        if bad is not None:
            raise self.rows.fail(
                bad,
                "displayed_choice",
                f"is {quoted(shown[bad])}, but a hidden display shows no answer",
            )
        own = np.isin(display.astype(str), ["shown", "other", "in-context"])
        bad = first(given & own & (shown != initial))
        if bad is not None:
            raise self.rows.fail(
                bad,
                "displayed_choice",
                f"is {quoted(shown[bad])}, but a {display[bad]} display shows the turn-1 answer "
                f"{quoted(initial[bad])}",
            )
        wrong = display == "answer-wrong"
        bad = first(given & wrong & (shown == correct))
        if bad is not None:
            raise self.rows.fail(
                bad,
                "displayed_choice",
                f"is the correct answer {quoted(shown[bad])}, but answer-wrong displays a "
                "wrong one",
            )
        # What the display determines: its own answer, or under answer-wrong the turn-1
        # answer when it was wrong, else (two options) the other one.
        derived = np.full(self.size, None, dtype=object)
        derived[own] = initial[own]
        wrong_own = wrong & (initial != correct)
        derived[wrong_own] = initial[wrong_own]
        flipped = self.rows.options.other(correct)
        wrong_other = wrong & (initial == correct) & (self.columns["n_options"] == 2)
        derived[wrong_other] = flipped[wrong_other]
        shown = np.where(given, shown, derived).astype(object)
        bad = first(wrong & pd.isna(shown))
        if bad is not None:
            raise self.rows.fail(
                bad,
                "displayed_choice",
                "is empty: with more than two options, an answer-wrong row names the wrong "
                "answer it displayed",
            )
        self.columns["displayed_choice"] = shown
        self._displayed_probabilities(shown)
        return np.where(pd.isna(shown), initial, shown).astype(object)

    def _displayed_probabilities(self, shown: np.ndarray) -> None:
        initial, final = self.columns["initial_choice"], self.columns["final_choice"]
        two = self.columns["n_options"] == 2
        on_initial = self.columns["initial_confidence"]
        final_on_initial = self.columns["final_prob_initial"]
        final_on_final = self.columns["final_confidence"]
        known = ~pd.isna(shown)
        is_initial = known & (shown == initial)
        is_final = known & (shown == final)
        before = self.columns["initial_prob_displayed"]
        derived = np.where(is_initial, on_initial, np.where(known & two, 1.0 - on_initial, np.nan))
        before = np.where(np.isnan(before), derived, before)
        after = self.columns["final_prob_displayed"]
        derived = np.where(
            is_initial,
            final_on_initial,
            np.where(
                is_final, final_on_final, np.where(known & two, 1.0 - final_on_initial, np.nan)
            ),
        )
        after = np.where(np.isnan(after), derived, after)
        for name, values, source in (
            ("initial_prob_displayed", before, on_initial),
            ("final_prob_displayed", after, final_on_initial),
        ):
            bad = first(known & np.isnan(values) & ~np.isnan(source))
            if bad is not None:
                raise self.rows.fail(
                    bad,
                    name,
                    f"is empty: the displayed answer {quoted(shown[bad])} is not the turn-1 "
                    "answer and there are more than two options, so its probability must be "
                    "given",
                )
            self.columns[name] = values

    def _advised(self, framed: np.ndarray) -> None:
        advice = self.columns["advice"]
        advised = self.columns["advised"]
        self.rows.options.check("advised", advised)
        given = ~pd.isna(advised)
        same, opposite = advice == "same", advice == "opposite"
        neutral = advice == "neutral"
        for mask, why in (
            (
                given & same & (advised != framed),
                "same advice recommends the answer the trial is framed on",
            ),
            (
                given & opposite & (advised == framed),
                "opposite advice recommends another answer than the one the trial is framed on",
            ),
            (given & neutral, "neutral advice recommends no option"),
        ):
            bad = first(mask)
            if bad is not None:
                raise self.rows.fail(
                    bad, "advised", f"is {quoted(advised[bad])}, but {why} ({quoted(framed[bad])})"
                )
        unknown = np.full(self.size, None, dtype=object)
        derived = np.where(
            same, framed, np.where(opposite, self.rows.options.other(framed), unknown)
        )
        advised = np.where(given, advised, derived).astype(object)
        self.columns["advised"] = advised
        initial = self.columns["initial_choice"]
        confidence = self.columns["initial_confidence"]
        known = ~pd.isna(advised)
        two = self.columns["n_options"] == 2
        derived_prob = np.where(
            known & (advised == initial),
            confidence,
            np.where(known & two, 1.0 - confidence, np.nan),
        )
        stated = self.columns["initial_prob_advised"]
        self.columns["initial_prob_advised"] = np.where(np.isnan(stated), derived_prob, stated)

    def _advisors(self) -> None:
        """A sequence of advisors (multi-advice) is JSON text: a list of objects with advice,
        accuracy, advised and initial_prob_advised (null when unknown)."""
        texts = self.columns["advisors"]
        for position in np.flatnonzero(~pd.isna(texts)):
            why = _advisors_problem(str(texts[position]), self.rows.options.labels[position])
            if why is not None:
                raise self.rows.fail(int(position), "advisors", why)


def _advisors_problem(text: str, labels: tuple[str, ...]) -> str | None:
    try:
        advisors = json.loads(text)
    except ValueError:
        return "is not JSON text (a list of advisors)"
    if not isinstance(advisors, list) or not advisors:
        return "is not a list of advisors"
    for number, advisor in enumerate(advisors, start=1):
        if not isinstance(advisor, dict):
            return f"advisor {number} is not an object"
        if advisor.get("advice") not in ("same", "opposite", "neutral"):
            return f"advisor {number}: advice must be same, opposite or neutral"
        accuracy = advisor.get("accuracy")
        if (
            not isinstance(accuracy, int | float)
            or isinstance(accuracy, bool)
            or not 0 <= accuracy <= 1
        ):
            return f"advisor {number}: accuracy must be a probability"
        advised = advisor.get("advised")
        if advised is not None and advised not in labels:
            return f"advisor {number}: advised {advised!r} is not one of the options"
        prob = advisor.get("initial_prob_advised")
        if prob is not None and (
            not isinstance(prob, int | float)
            or isinstance(prob, bool)
            or not 0 <= prob <= 1
            or math.isnan(prob)
        ):
            return f"advisor {number}: initial_prob_advised must be a probability or null"
    return None
