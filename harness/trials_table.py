"""`trials.parquet`: one row per answered later turn, joined with the turn-1 call of its item.

It is derived entirely from calls.jsonl and rewritten at the end of every run (or resume),
so it can always be rebuilt; calls.jsonl stays the record of truth. The engine's columns say
what any protocol's turns have in common (which answer, with what confidence, changed or
not, right or wrong); the paradigm adds its own (`Paradigm.trial_columns`), the engine names
none of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mindshift.harness.paradigm import Paradigm, TurnAnswer
from mindshift.harness.record import CallRecord
from mindshift.harness.run_format import CALLS_FILE, TRIALS_FILE

COLUMNS = [
    "trial_id",
    "initial_trial_id",
    "model",
    "repeat",
    "item_id",
    "correct",
    "n_options",
    "condition",
    "turn",
    "readout",
    "initial_choice",
    "initial_confidence",
    "initial_correct",
    "initial_censored",
    "initial_outside_mass",
    "final_choice",
    "final_confidence",
    "final_prob_initial",
    "changed_mind",
    "final_correct",
    "final_censored",
    "final_outside_mass",
]
"""The engine's columns. `initial_*` describe the item's turn-1 answer, `final_*` the row's
own turn (`turn`: 2 for a two-turn protocol; 2, 3, ... for longer ones), `changed_mind` whether
that turn's answer differs from turn 1's; `readout` how the row's confidences were read
(`harness.readouts`; `logprobs` for records made before readouts were stored)."""


def _prob(record: CallRecord, label: str | None) -> float:
    """Probability of `label` in a call's readout; NaN when unknown (never a made-up 0)."""
    probs = record.probs
    if label is None or probs is None:
        return math.nan
    value = probs.get(label)
    return math.nan if value is None else float(value)


def _outside_mass(record: CallRecord) -> float:
    readout = record.readout
    if readout is None or readout.outside_mass is None:
        return math.nan
    return float(readout.outside_mass)


def _censored(record: CallRecord) -> bool:
    return record.readout is not None and bool(record.readout.censored)


def table_columns(paradigm: type[Paradigm] | None) -> list[str]:
    """Every column of a trials table of this paradigm: the engine's, then the paradigm's."""
    added = [] if paradigm is None or paradigm.Columns is None else paradigm.Columns.model_fields
    return [*COLUMNS, *added]


def build_trials_table(
    records: Iterable[CallRecord], paradigm: type[Paradigm] | None
) -> pd.DataFrame:
    """Join every successful later turn with its item's successful turn-1 call; the
    paradigm (None: the engine's columns only) adds its columns to each row."""
    initial: dict[str, CallRecord] = {}
    later: list[CallRecord] = []
    for record in records:
        if record.failed:
            continue
        if record.stage == 1:
            initial[record.trial_id] = record
        else:
            later.append(record)
    rows = []
    # A turn-1 answer is shared by every later turn of its item (36 under the demo's design).
    first_answers: dict[str, TurnAnswer] = {}
    for record in later:
        first = initial.get(record.initial_trial_id or "")
        if first is None:
            continue
        item = record.item
        initial_choice = str(first.choice)
        final_choice = str(record.choice)
        row: dict[str, object] = {
            "trial_id": record.trial_id,
            "initial_trial_id": record.initial_trial_id,
            "model": record.model,
            "repeat": record.repeat,
            "item_id": item.item_id,
            "correct": item.correct,
            "n_options": len(item.labels),
            "condition": record.condition,
            "turn": record.stage,
            "readout": record.readout_method
            or ("logprobs" if record.readout is not None else "choice-only"),
            "initial_choice": initial_choice,
            "initial_confidence": _prob(first, initial_choice),
            "initial_correct": initial_choice == item.correct,
            "initial_censored": _censored(first),
            "initial_outside_mass": _outside_mass(first),
            "final_choice": final_choice,
            "final_confidence": _prob(record, final_choice),
            "final_prob_initial": _prob(record, initial_choice),
            "changed_mind": final_choice != initial_choice,
            "final_correct": final_choice == item.correct,
            "final_censored": _censored(record),
            "final_outside_mass": _outside_mass(record),
        }
        if paradigm is not None:
            first_answer = first_answers.get(first.trial_id)
            if first_answer is None:
                first_answer = first_answers[first.trial_id] = TurnAnswer.of(first)
            added = paradigm.trial_columns(record.situation, first_answer, TurnAnswer.of(record))
            if added is not None:
                row.update(added.model_dump())
        rows.append(row)
    table = pd.DataFrame(rows, columns=table_columns(paradigm))
    return table.sort_values(
        ["model", "item_id", "repeat", "condition", "turn"], kind="stable"
    ).reset_index(drop=True)


STAMP_KEY = b"mindshift.calls"
"""Parquet metadata key: the fingerprint of the calls.jsonl a trials table was built from."""


def calls_fingerprint(path: Path) -> str:
    """Size and SHA-256 of a calls.jsonl: whether a trials table is still its table."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return f"{size}:{digest.hexdigest()}"


def trials_stamp(path: Path) -> str | None:
    """The fingerprint a trials.parquet was stamped with; None when it has none (written by
    an older mindshift) or cannot be read as parquet."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return None
    stamp = metadata.get(STAMP_KEY)
    return None if stamp is None else stamp.decode("utf-8", errors="replace")


def write_trials_table(run_dir: Path, table: pd.DataFrame) -> Path:
    """Write trials.parquet atomically (a reader never sees half a file), stamped with the
    fingerprint of the calls.jsonl it was built from (so `analyse` can tell a table left
    stale by a killed run)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = run_dir / TRIALS_FILE
    temporary = run_dir / (TRIALS_FILE + ".tmp")
    calls = run_dir / CALLS_FILE
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if calls.is_file():
        metadata = {**(arrow.schema.metadata or {}), STAMP_KEY: calls_fingerprint(calls).encode()}
        arrow = arrow.replace_schema_metadata(metadata)
    try:
        pq.write_table(arrow, temporary)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path
