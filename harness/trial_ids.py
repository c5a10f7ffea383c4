"""Deterministic trial identity: the resume key, the cache key and the seed of every call.

A trial is identified by everything that makes it a distinct observation — experiment, seed,
model, paradigm, item, condition, repeat and stage — and never by the prompt text alone:
keying on the prompt would collapse repeated samples at temperature > 0 into one.
"""

from __future__ import annotations

import hashlib
import json

INITIAL_CONDITION = "initial"
"""The condition name of stage-1 calls, which every condition of an item shares."""
CALIBRATION_CONDITION = "calibration"
"""The condition name of the stage-1 calls of calibration items, which have no stage 2."""


def trial_id(
    *,
    experiment: str,
    seed: int,
    model: str,
    paradigm: str,
    item: str,
    condition: str,
    repeat: int,
    stage: int,
) -> str:
    """A short, stable hex id; identical inputs give identical ids on every machine."""
    key = json.dumps(
        [experiment, seed, model, paradigm, item, condition, repeat, stage],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def seed_from_id(identifier: str, salt: str = "") -> int:
    """A 63-bit integer seed drawn from an id (and an optional salt for independent streams)."""
    digest = hashlib.sha256(f"{salt}|{identifier}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
