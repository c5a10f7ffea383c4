"""`trials.parquet`: one row per stage-2 trial, joined with the stage-1 call it was built from.

It is derived entirely from calls.jsonl and rewritten at the end of every run (or resume),
so it can always be rebuilt; calls.jsonl stays the record of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from harness.run_store import CALLS_FILE

TRIALS_FILE = "trials.parquet"

COLUMNS = [
    "trial_id",
    "initial_trial_id",
    "model",
    "repeat",
    "item_id",
    "correct",
    "n_options",
    "condition",
    "display",
    "advice",
    "accuracy",
    "advised",
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
    "initial_prob_advised",
    "displayed_choice",
    "initial_prob_displayed",
    "final_prob_displayed",
    "advisors",
]
"""The last five serve K options and the paradigms beyond change-of-mind's main design:
`initial_prob_advised` is the stage-1 probability of the advised option (the K-option Bayes
update needs it); `displayed_choice` the answer the stage-2 prompt displayed as the initial
one (null when hidden; under `answer-wrong` it differs from the stage-1 answer), with its
stage-1 and final probabilities; `advisors` a sequence of advisors as JSON text
(`multi-advice`: advice, accuracy, advised, initial_prob_advised each), null otherwise."""


def _prob(record: dict[str, Any], label: str | None) -> float:
    """Probability of `label` in a call's readout; NaN when unknown (never a made-up 0)."""
    readout = record.get("readout")
    if label is None or readout is None or readout.get("probs") is None:
        return math.nan
    value = readout["probs"].get(label)
    return math.nan if value is None else float(value)


def _readout_field(record: dict[str, Any], name: str, missing: Any) -> Any:
    readout = record.get("readout")
    if readout is None or readout.get(name) is None:
        return missing
    return readout[name]


def _advisors(situation: dict[str, Any], first: dict[str, Any]) -> str | None:
    """A sequence of advisors as JSON text, each with its advised option's stage-1 probability."""
    sequence = situation.get("advisors")
    if not isinstance(sequence, list):
        return None
    advisors = [
        {**one, "initial_prob_advised": _prob(first, one.get("advised"))} for one in sequence
    ]
    # NaN is not JSON: an unknown probability is written as null.
    for one in advisors:
        if math.isnan(one["initial_prob_advised"]):
            one["initial_prob_advised"] = None
    return json.dumps(advisors, separators=(",", ":"))


def build_trials_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Join every successful stage-2 call with its stage-1 call."""
    initial: dict[str, dict[str, Any]] = {}
    followups: list[dict[str, Any]] = []
    for record in records:
        if record.get("error") is not None or record.get("choice") is None:
            continue
        if record["stage"] == 1:
            initial[record["trial_id"]] = record
        else:
            followups.append(record)
    rows = []
    for record in followups:
        first = initial.get(record["initial_trial_id"])
        if first is None:
            continue
        item = record["item"]
        factors = record.get("factors", {})
        initial_choice = first["choice"]
        final_choice = record["choice"]
        situation = record["request"].get("situation") or {}
        displayed = situation.get("displayed")
        rows.append(
            {
                "trial_id": record["trial_id"],
                "initial_trial_id": record["initial_trial_id"],
                "model": record["model"],
                "repeat": record["repeat"],
                "item_id": item["id"],
                "correct": item["correct"],
                "n_options": len(item["labels"]),
                "condition": record["condition"],
                "display": factors.get("display"),
                "advice": factors.get("advice"),
                "accuracy": factors.get("accuracy"),
                "advised": situation.get("advised"),
                "initial_choice": initial_choice,
                "initial_confidence": _prob(first, initial_choice),
                "initial_correct": initial_choice == item["correct"],
                "initial_censored": bool(_readout_field(first, "censored", False)),
                "initial_outside_mass": float(_readout_field(first, "outside_mass", math.nan)),
                "final_choice": final_choice,
                "final_confidence": _prob(record, final_choice),
                "final_prob_initial": _prob(record, initial_choice),
                "changed_mind": final_choice != initial_choice,
                "final_correct": final_choice == item["correct"],
                "final_censored": bool(_readout_field(record, "censored", False)),
                "final_outside_mass": float(_readout_field(record, "outside_mass", math.nan)),
                "initial_prob_advised": _prob(first, situation.get("advised")),
                "displayed_choice": displayed,
                "initial_prob_displayed": _prob(first, displayed),
                "final_prob_displayed": _prob(record, displayed),
                "advisors": _advisors(situation, first),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(
        ["model", "item_id", "repeat", "condition"], kind="stable"
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
