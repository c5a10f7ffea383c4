"""The turn-1 file (`turn1.csv`): every turn-1 answer of a run, with each option's probability.

The trials file carries each item's turn-1 answer and its confidence, but only for items that
went on to a later turn, and with more than two options only the chosen option's probability.
Three parts of the analysis need more (docs/trials-schema.md): held-out calibration items
(asked at turn 1 only), which set the temperature the `auto` prior calibrates every
confidence with; the calibration metrics, which need every option's probability; and the
initial accuracy over every answered item. `mindshift export` writes this file from a run's
calls.jsonl, and `mindshift import --turn1 FILE` stores its rows as the turn-1 records of the
imported run's calls.jsonl (no request, no response: the calls were made elsewhere), which is
where the analysis reads turn-1 answers from.

One row per turn-1 answer: model, item_id, repeat, split (`main` or `calibration`), correct,
choice, n_options / labels, readout, censored, outside_mass, trial_id, and one `prob_<label>`
column per option label (empty where the item has no such option, or where no probability
was read).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.schema import CALIBRATION, MAIN
from mindshift.harness.record import CallRecord
from mindshift.harness.trial_ids import CALIBRATION_CONDITION, INITIAL_CONDITION, trial_id
from mindshift.harness.types import Item, OptionReadout
from mindshift.transfer.errors import TransferError
from mindshift.transfer.options import COUNT, row_options
from mindshift.transfer.schema import (
    IMPORT_EXPERIMENT,
    LABEL_SEPARATOR,
    LABELS,
    PROBABILITY_TOLERANCE,
    READOUTS,
)
from mindshift.transfer.source import Cells, SourceTable, first, quoted

TURN1_CSV: Final = "turn1.csv"
PROB_PREFIX: Final = "prob_"
SPLITS: Final = (MAIN, CALIBRATION)
REQUIRED: Final = ("model", "item_id", "correct", "choice")
OPTIONAL: Final = (
    "trial_id",
    "repeat",
    "split",
    COUNT,
    LABELS,
    "readout",
    "censored",
    "outside_mass",
)
ANSWER_KEY: Final = ["model", "item_id", "repeat"]


def _readout_name(record: CallRecord) -> str:
    """As the trials table names it (`harness.trials_table`)."""
    return record.readout_method or ("logprobs" if record.readout is not None else "choice-only")


def turn1_table(records: Iterable[CallRecord]) -> pd.DataFrame:
    """The turn-1 file of a run's records: one row per answered turn-1 call (a call stored
    twice: the last, where the last stands, as the analysis reads it)."""
    answers: dict[str, CallRecord] = {}
    for record in records:
        if record.stage == 1 and not record.failed:
            answers.pop(record.trial_id, None)
            answers[record.trial_id] = record
    labels: list[str] = []
    rows = []
    for record in answers.values():
        item = record.item
        probs = record.probs
        outside = None if record.readout is None else record.readout.outside_mass
        row: dict[str, object] = {
            "trial_id": record.trial_id,
            "model": record.model,
            "item_id": item.item_id,
            "repeat": record.repeat,
            "split": CALIBRATION if record.condition == CALIBRATION_CONDITION else MAIN,
            "correct": item.correct,
            "choice": record.choice,
            COUNT: len(item.labels),
            LABELS: LABEL_SEPARATOR.join(item.labels),
            "readout": _readout_name(record),
            "censored": record.readout is not None and bool(record.readout.censored),
            "outside_mass": np.nan if outside is None else float(outside),
        }
        for label in item.labels:
            if label not in labels:
                labels.append(label)
            value = None if probs is None else probs.get(label)
            row[PROB_PREFIX + label] = np.nan if value is None else float(value)
        rows.append(row)
    columns = [*OPTIONAL[:1], *REQUIRED[:2], "repeat", "split", "correct", "choice"]
    columns += [COUNT, LABELS, "readout", "censored", "outside_mass"]
    columns += [PROB_PREFIX + label for label in labels]
    # In calls.jsonl's order, as the analysis reads them: a fit over these answers (the
    # temperature) then sums in the same order, and an imported run's numbers are equal.
    return pd.DataFrame(rows, columns=columns)


def _condition(split: str) -> str:
    """The condition the engine records on a turn-1 call of this split."""
    return CALIBRATION_CONDITION if split == CALIBRATION else INITIAL_CONDITION


class _Turn1Rows:
    """The rows of a turn-1 file, checked against themselves and against the trials."""

    def __init__(self, source: SourceTable, trials: pd.DataFrame, paradigm: str) -> None:
        self.source = source
        self.trials = trials
        self.paradigm = paradigm
        self.cells = Cells(source)
        self.size = len(source)

    def fail(self, position: int, column: str, why: str) -> TransferError:
        return self.source.problem(position, column, why)

    def _text(self, name: str) -> np.ndarray:
        values = self.cells.text(name).to_numpy(object)
        empty = first(pd.isna(values))
        if empty is not None:
            raise self.fail(empty, name, "is empty")
        return np.asarray(values, dtype=object)

    def _columns(self) -> list[str]:
        """The probability columns; TransferError for a missing or misspelt column."""
        name = self.source.path.name
        missing = [column for column in REQUIRED if not self.source.has(column)]
        if missing:
            raise TransferError(f"{name} lacks column(s): {', '.join(missing)}")
        known = (*REQUIRED, *OPTIONAL)
        probability_columns = []
        for column in self.source.frame.columns:
            if column.startswith(PROB_PREFIX):
                probability_columns.append(column)
            elif column not in known:
                close = difflib.get_close_matches(column, known, n=1, cutoff=0.85)
                if close:
                    raise TransferError(
                        f"{name}: unknown column {column!r} (did you mean {close[0]!r}?)"
                    )
        return probability_columns

    def records(self) -> list[CallRecord]:
        probability_columns = self._columns()
        model, item = self._text("model"), self._text("item_id")
        correct, choice = self._text("correct"), self._text("choice")
        options = row_options(self.source, self.cells)
        options.check("correct", correct)
        options.check("choice", choice)
        repeat = (
            self.cells.whole("repeat", default=0, low=0)
            if self.source.has("repeat")
            else np.zeros(self.size, dtype=np.int64)
        )
        split = self._split()
        probs = self._probabilities(probability_columns, options.groups)
        censored = (
            self.cells.flag("censored", default=False)
            if self.source.has("censored")
            else np.zeros(self.size, dtype=bool)
        )
        outside = (
            self.cells.probability("outside_mass")
            if self.source.has("outside_mass")
            else np.full(self.size, np.nan)
        )
        readout = self._readout(probs, censored)
        frame = pd.DataFrame({"model": model, "item_id": item, "repeat": repeat})
        self._unique(frame)
        ids = self._against_trials(frame, split, correct, choice, options.counts, probs)
        records = []
        for position in range(self.size):
            labels = options.labels[position]
            known = probs[position]
            read = readout[position] != "choice-only"
            records.append(
                CallRecord(
                    trial_id=ids[position],
                    stage=1,
                    model=str(model[position]),
                    item=Item(str(item[position]), "", labels, (), str(correct[position])),
                    condition=(
                        CALIBRATION_CONDITION
                        if split[position] == CALIBRATION
                        else INITIAL_CONDITION
                    ),
                    repeat=int(repeat[position]),
                    paradigm=self.paradigm,
                    choice=str(choice[position]),
                    readout=(
                        OptionReadout(
                            mass={},  # the raw token mass was not imported: unknown
                            probs=known,
                            outside_mass=(
                                None if np.isnan(outside[position]) else float(outside[position])
                            ),
                            censored=bool(censored[position]) or known is None,
                        )
                        if read
                        else None
                    ),
                    readout_method=str(readout[position]),
                )
            )
        return records

    def _split(self) -> np.ndarray:
        if not self.source.has("split"):
            return np.full(self.size, MAIN, dtype=object)
        split = self.cells.text("split").to_numpy(object)
        split = np.where(pd.isna(split), MAIN, split).astype(object)
        bad = first(~pd.Series(split).isin(SPLITS).to_numpy(bool))
        if bad is not None:
            raise self.fail(
                bad, "split", f"unknown split {quoted(split[bad])} (main or calibration)"
            )
        return split

    def _probabilities(
        self,
        columns: list[str],
        groups: tuple[tuple[np.ndarray, tuple[str, ...]], ...],
    ) -> list[dict[str, float] | None]:
        """Each row's option probabilities: every option's, or none (a choice-only or
        censored readout); an option the row does not have has no probability."""
        values = {column[len(PROB_PREFIX) :]: self.cells.probability(column) for column in columns}
        out: list[dict[str, float] | None] = [None] * self.size
        for rows, labels in groups:
            for label, column in values.items():
                if label not in labels:
                    bad = first(rows & ~np.isnan(column))
                    if bad is not None:
                        raise self.fail(
                            bad,
                            PROB_PREFIX + label,
                            f"the item has no option {label!r} (its options: {', '.join(labels)})",
                        )
            matrix = np.column_stack(
                [values.get(label, np.full(self.size, np.nan)) for label in labels]
            )
            known = ~np.isnan(matrix)
            partial = rows & known.any(axis=1) & ~known.all(axis=1)
            bad = first(partial)
            if bad is not None:
                gap = labels[int(np.flatnonzero(~known[bad])[0])]
                raise self.fail(
                    bad,
                    PROB_PREFIX + gap,
                    "is empty, but other options' probabilities are given (give every "
                    "option's probability, or none)",
                )
            for position in np.flatnonzero(rows & known.all(axis=1)):
                out[position] = {
                    label: float(matrix[position, index]) for index, label in enumerate(labels)
                }
        return out

    def _readout(self, probs: list[dict[str, float] | None], censored: np.ndarray) -> np.ndarray:
        unread = np.array([one is None for one in probs], dtype=bool)
        if self.source.has("readout"):
            readout = self.cells.text("readout").to_numpy(object)
            bad = first(~pd.isna(readout) & ~pd.Series(readout).isin(READOUTS).to_numpy(bool))
            if bad is not None:
                raise self.fail(
                    bad,
                    "readout",
                    f"unknown readout {quoted(readout[bad])} (one of {', '.join(READOUTS)})",
                )
        else:
            readout = np.full(self.size, None, dtype=object)
        default = np.where(unread & ~censored, "choice-only", "logprobs").astype(object)
        readout = np.where(pd.isna(readout), default, readout).astype(object)
        bad = first(unread & ~censored & (readout != "choice-only"))
        if bad is not None:
            raise self.fail(
                bad,
                PROB_PREFIX + "*",
                "no option probability is given, but the row's readout read them (leave them "
                "empty only for a choice-only readout or a censored one)",
            )
        return readout

    def _unique(self, frame: pd.DataFrame) -> None:
        repeated = frame.duplicated(ANSWER_KEY, keep=False).to_numpy(bool)
        bad = first(repeated)
        if bad is not None:
            others = np.flatnonzero(
                repeated & (frame[ANSWER_KEY] == frame.iloc[bad][ANSWER_KEY]).all(axis=1).to_numpy()
            )
            raise TransferError(
                f"{self.source.path.name} {self.source.row_name(int(others[1]))} repeats "
                f"{self.source.row_name(bad)}: the same model, item_id and repeat (one turn-1 "
                "answer each)"
            )

    def _against_trials(
        self,
        frame: pd.DataFrame,
        split: np.ndarray,
        correct: np.ndarray,
        choice: np.ndarray,
        counts: np.ndarray,
        probs: list[dict[str, float] | None],
    ) -> list[str]:
        """Each row's trial id, after checking the rows against the trials: a main answer
        that has trials is their turn-1 answer; a calibration item has no trials; every
        turn-1 answer of a model in the file is in it."""
        trials = self.trials.drop_duplicates(ANSWER_KEY).set_index(ANSWER_KEY)
        keys = pd.MultiIndex.from_frame(frame)
        found = trials.index.get_indexer(keys)
        has_trials = found >= 0
        stated = (
            self.cells.text("trial_id").to_numpy(object)
            if self.source.has("trial_id")
            else np.full(self.size, None, dtype=object)
        )
        tried_items = set(self.trials["item_id"])
        for position in range(self.size):
            if split[position] == CALIBRATION:
                if frame.iloc[position]["item_id"] in tried_items:
                    raise self.fail(
                        position,
                        "split",
                        "a calibration item is held out (turn 1 only), but this item has trials",
                    )
                continue
            if not has_trials[position]:
                continue
            row = trials.iloc[found[position]]
            for column, mine, theirs in (
                ("choice", choice[position], row["initial_choice"]),
                ("correct", correct[position], row["correct"]),
                (COUNT, int(counts[position]), int(row["n_options"])),
            ):
                if mine != theirs:
                    raise self.fail(
                        position,
                        column,
                        f"{quoted(mine)} differs from the trials' {quoted(theirs)} for this "
                        "model, item and repeat",
                    )
            known = probs[position]
            mine_confidence = np.nan if known is None else known[str(choice[position])]
            theirs_confidence = float(row["initial_confidence"])
            same = (np.isnan(mine_confidence) and np.isnan(theirs_confidence)) or abs(
                mine_confidence - theirs_confidence
            ) <= PROBABILITY_TOLERANCE
            if not same:
                raise self.fail(
                    position,
                    PROB_PREFIX + str(choice[position]),
                    f"{quoted(mine_confidence)} differs from the trials' initial_confidence "
                    f"{quoted(theirs_confidence)} for this model, item and repeat",
                )
            if stated[position] is not None and stated[position] != row["initial_trial_id"]:
                raise self.fail(
                    position,
                    "trial_id",
                    f"{quoted(stated[position])} differs from the trials' initial_trial_id "
                    f"{row['initial_trial_id']!r}",
                )
        self._complete(frame, has_trials)
        ids: list[str] = []
        for position in range(self.size):
            if has_trials[position]:
                ids.append(str(trials.iloc[found[position]]["initial_trial_id"]))
            elif stated[position] is not None:
                ids.append(str(stated[position]))
            else:
                ids.append(
                    trial_id(
                        experiment=IMPORT_EXPERIMENT,
                        seed=0,
                        model=str(frame.iloc[position]["model"]),
                        paradigm=self.paradigm,
                        item=str(frame.iloc[position]["item_id"]),
                        condition=_condition(split[position]),
                        repeat=int(frame.iloc[position]["repeat"]),
                        stage=1,
                    )
                )
        repeated = pd.Series(ids).duplicated().to_numpy(bool)
        bad = first(repeated)
        if bad is not None:
            raise self.fail(
                bad, "trial_id", f"{quoted(ids[bad])} is the id of another turn-1 answer"
            )
        return ids

    def _complete(self, frame: pd.DataFrame, has_trials: np.ndarray) -> None:
        """Every turn-1 answer the trials hold for a model of this file is in it (the
        analysis reads a model's turn-1 answers from one place: this file, or the trials)."""
        models = set(frame["model"])
        strangers = sorted(models - set(self.trials["model"]))
        if strangers:
            raise TransferError(
                f"{self.source.path.name}: model {strangers[0]!r} has no trials in the trials file"
            )
        answers = self.trials.drop_duplicates(ANSWER_KEY)
        answers = answers.loc[answers["model"].isin(models)]
        listed = pd.MultiIndex.from_frame(frame.loc[has_trials])
        wanted = pd.MultiIndex.from_frame(answers[ANSWER_KEY])
        absent = ~wanted.isin(listed)
        if absent.any():
            model, item, repeat = wanted[int(np.flatnonzero(absent)[0])]
            raise TransferError(
                f"{self.source.path.name} lacks the turn-1 answer of model {model!r}, item "
                f"{item!r}, repeat {repeat}, which the trials hold: a model's turn-1 file lists "
                "every turn-1 answer of that model"
            )


def turn1_records(source: SourceTable, trials: pd.DataFrame, paradigm: str) -> list[CallRecord]:
    """The turn-1 records of a turn-1 file, checked against the imported `trials` (see the
    module doc); TransferError naming the row and column of the first problem."""
    return _Turn1Rows(source, trials, paradigm).records()
