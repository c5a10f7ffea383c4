"""`batches.jsonl`: the batches a run submitted, so that a restart collects instead of paying
twice.

Append-only JSON lines, one per event, each written (and synced) before the step it enables:
- `submitting`: token, model, stage and the keys of the calls in the batch — written
  before the provider is asked, so a batch whose id never reached the log can be found
  again by its token;
- `submitted`: token and the provider's batch id;
- `collected`: the batch's answers are all in calls.jsonl;
- `abandoned`: the batch was never created (or cannot be found): its calls are free again.

A batch is open from `submitting` to `collected` or `abandoned`; the calls of open batches
are not submitted again. The file belongs to the run directory's lock holder (`RunStore`).
A torn last line (a crash inside a write) is ignored, as in calls.jsonl.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindshift.harness.run_format import BATCHES_FILE, CallKey


@dataclass
class OpenBatch:
    """A batch submitted (or being submitted) and not yet collected."""

    token: str
    model: str
    stage: int
    keys: list[CallKey]
    batch_id: str | None
    """None when the run stopped before the provider's id was logged (see `find`)."""


class BatchLog:
    """The batches.jsonl of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / BATCHES_FILE

    def open_batches(self) -> list[OpenBatch]:
        """Batches submitted (or being submitted) and not collected, oldest first."""
        batches: dict[str, OpenBatch] = {}
        for event in self._events():
            token = str(event.get("token"))
            kind = event.get("event")
            if kind == "submitting":
                keys = [(str(tid), int(stage)) for tid, stage in event.get("keys", [])]
                batches[token] = OpenBatch(
                    token, str(event["model"]), int(event["stage"]), keys, None
                )
            elif kind == "submitted" and token in batches:
                batches[token].batch_id = str(event["batch_id"])
            elif kind in ("collected", "abandoned"):
                batches.pop(token, None)
        return list(batches.values())

    def submitting(self, token: str, model: str, stage: int, keys: list[CallKey]) -> None:
        self._append(
            {
                "event": "submitting",
                "token": token,
                "model": model,
                "stage": stage,
                "keys": [list(key) for key in keys],
            }
        )

    def submitted(self, token: str, batch_id: str) -> None:
        self._append({"event": "submitted", "token": token, "batch_id": batch_id})

    def collected(self, token: str, batch_id: str) -> None:
        self._append({"event": "collected", "token": token, "batch_id": batch_id})

    def abandoned(self, token: str, reason: str) -> None:
        self._append({"event": "abandoned", "token": token, "reason": reason})

    def _events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")
        events = []
        for line in lines[:-1]:  # after the last newline: a torn write, or nothing
            if line.strip():
                events.append(json.loads(line))
        return events

    def _append(self, event: dict[str, Any]) -> None:
        event["at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)  # rare and precious: a lost line could mean paying twice
        finally:
            os.close(fd)
