"""The run directory's on-disk format: file names, the record schema's versions, key encoding.

One leaf module that the engine (which writes run directories) and the analysis (which reads
them) both import, so the layout is declared once. It imports nothing of mindshift's.

A run directory holds:
- `calls.jsonl`: one JSON line per finished call, its current outcome (`harness.record`);
- `failures.jsonl`: failed outcomes retired by a later run, each with `retired_at`;
- `batches.jsonl`: the batch jobs of `--batch` runs (`harness.batch_log`);
- `manifest.json`: the config, the versions and the stimuli digest (`harness.manifest`);
- `trials.parquet`: one row per answered later turn, derived from calls.jsonl;
- `analysis/`: what `mindshift analyse` writes;
- `.lock`: held (flock) by the process that writes the run.

Record schema versions (the manifest's `record_schema`; a run without it is version 1):
- 1: two-turn protocols. A record's key is (trial_id, stage); stage 1 is the first turn,
  stage 2 a later turn built from it, linked by `initial_trial_id`.
- 2: protocols of any number of turns. `stage` is the turn number; every turn after the
  first keeps `initial_trial_id` (its turn-1 call), and a turn after the second also names
  the turn it was built from in `previous_trial_id`. A version-1 record is a version-2
  record whose turns stop at 2, so readers of version 2 read both unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

CALLS_FILE: Final = "calls.jsonl"
FAILURES_FILE: Final = "failures.jsonl"
BATCHES_FILE: Final = "batches.jsonl"
MANIFEST_FILE: Final = "manifest.json"
TRIALS_FILE: Final = "trials.parquet"
ANALYSIS_DIR: Final = "analysis"
LOCK_FILE: Final = ".lock"

RECORD_SCHEMA_VERSION: Final = 3
"""The record schema this code writes (see the module docstring for the versions)."""

CallKey = tuple[str, int]
"""A record's key: (trial_id, stage). calls.jsonl holds at most one record per key."""

_KEY_PREFIX: Final = re.compile(rb'^\{"trial_id":"([^"\\]*)","stage":(\d+)[,}]')
"""The first bytes of a record as `encode_line` writes it: its key, readable without parsing."""

_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)
"""Built once: `json.dumps` with options builds an encoder per call. Compact, UTF-8, NaN and
Infinity refused; a record is a tree of fresh JSON values, never circular, so the circularity
check would only cost time (bench/bench_throughput.py)."""


def encode_line(record_json: dict[str, Any]) -> bytes:
    """One record as the line the run store appends: compact JSON, trial_id and stage first."""
    return (_ENCODER.encode(record_json) + "\n").encode("utf-8")


def line_key(line: bytes) -> CallKey | None:
    """The key of a line written by `encode_line`, read from its first bytes without
    parsing; None for a line in another layout (parse it to know its key). A reader that
    needs only some stages or calls (the analysis reads the first turns and a few example
    trials; a large run holds a million later turns) skips the others by this."""
    match = _KEY_PREFIX.match(line)
    if match is None:
        return None
    return (match.group(1).decode(), int(match.group(2)))
