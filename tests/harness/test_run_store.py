"""The run store's invariants: one record per call key in calls.jsonl, failures moved aside
crash-safely before they are retried, torn last lines cut."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mindshift.harness.record import CallRecord
from mindshift.harness.run_format import CALLS_FILE, FAILURES_FILE
from mindshift.harness.run_store import RunStore


def record(trial: str, stage: int = 1, error: str | None = None, at: str = "t0") -> CallRecord:
    return CallRecord.from_json(
        {
            "trial_id": trial,
            "stage": stage,
            "model": "m",
            "item": {"id": "i", "labels": ["A", "B"], "options": ["x", "y"], "correct": "A"},
            "condition": "initial" if stage == 1 else "shown/same/0.70",
            "repeat": 0,
            "initial_trial_id": None if stage == 1 else "a",
            "request": {"situation": {}},
            "choice": None if error else "A",
            "error": error,
            "finished_at": at,
        }
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_retiring_failures_moves_them_aside_once(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        store.append_many([record("a"), record("b", error="HTTP 500"), record("c", 2)])
        loaded = store.load()
        kept = store.retire_failures(loaded)
        assert set(kept) == {("a", 1), ("c", 2)}
        assert store.records() is kept
        store.append(record("b", at="t1"))  # the retry's outcome
        assert set(store.records()) == {("a", 1), ("b", 1), ("c", 2)}
    calls = lines(tmp_path / CALLS_FILE)
    assert Counter((r["trial_id"], r["stage"]) for r in calls) == {
        ("a", 1): 1,
        ("c", 2): 1,
        ("b", 1): 1,
    }
    (retired,) = lines(tmp_path / FAILURES_FILE)
    assert retired["trial_id"] == "b" and retired["error"] == "HTTP 500" and retired["retired_at"]


def test_a_crash_between_the_two_steps_duplicates_nothing(tmp_path: Path) -> None:
    failed = record("b", error="timeout")
    with RunStore(tmp_path) as store:
        store.append_many([record("a"), failed])
    # As if killed after failures.jsonl was written but before calls.jsonl was replaced:
    (tmp_path / FAILURES_FILE).write_text(
        json.dumps(failed.retired("x").to_json()) + "\n", encoding="utf-8"
    )
    with RunStore(tmp_path) as store:
        store.retire_failures(store.load())
    assert len(lines(tmp_path / FAILURES_FILE)) == 1
    assert [r["trial_id"] for r in lines(tmp_path / CALLS_FILE)] == ["a"]


def test_torn_last_lines_of_both_logs_are_cut(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        store.append_many([record("a"), record("b")])
    for name in (CALLS_FILE, FAILURES_FILE):
        with (tmp_path / name).open("ab") as handle:
            handle.write(b'{"trial_id":"torn","sta')
    with RunStore(tmp_path) as store:
        removed = store.repair()
        assert removed == 2 * len(b'{"trial_id":"torn","sta')
        assert set(store.load()) == {("a", 1), ("b", 1)}
    assert (tmp_path / FAILURES_FILE).read_bytes() == b""
