"""The run directory's call log: append-only `calls.jsonl`, guarded by a lock.

Every finished call is one JSON line, written with a single `write` on an O_APPEND file
descriptor as soon as the call returns, so a crash (even SIGKILL) loses at most the calls in
flight. A torn last line — the process died inside that write — is cut off when the run is
opened again. (trial_id, stage) is the record's key; the runner never asks for a key twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import RunDirError

CALLS_FILE = "calls.jsonl"
LOCK_FILE = ".lock"
FSYNC_INTERVAL_S = 2.0
"""Data written survives a killed process at once; fsync only guards against power loss."""

CallKey = tuple[str, int]


def record_key(record: dict[str, Any]) -> CallKey:
    return (str(record["trial_id"]), int(record["stage"]))


def read_call_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a calls.jsonl, skipping a torn final line (the call that was in flight)."""
    with path.open("rb") as handle:
        lines = handle.read().split(b"\n")
    # Everything after the last newline is an unfinished write, or empty.
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            raise RunDirError(
                f"{path}: line {number} is not valid JSON; the log is damaged"
            ) from None


class RunStore:
    """Exclusive access to one run directory's call log; use as a context manager."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.calls_path = run_dir / CALLS_FILE
        self._lock_fd: int | None = None
        self._calls_fd: int | None = None
        self._last_sync = time.monotonic()

    def __enter__(self) -> RunStore:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunDirError(f"run directory {self.run_dir} exists and is not a directory")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunDirError(
                f"cannot use run directory {self.run_dir}: {error.strerror}"
            ) from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise RunDirError(
                f"run directory {self.run_dir} is in use by another mindshift process"
            ) from None
        self._lock_fd = lock_fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._calls_fd is not None:
            os.fsync(self._calls_fd)
            os.close(self._calls_fd)
            self._calls_fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def repair(self) -> int:
        """Cut a torn final line off calls.jsonl; returns the number of bytes removed."""
        self._require_lock()
        if not self.calls_path.exists():
            return 0
        with self.calls_path.open("rb+") as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return 0
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            return len(data) - keep

    def load(self) -> dict[CallKey, dict[str, Any]]:
        """Every stored call by key (after `repair`)."""
        self._require_lock()
        if not self.calls_path.exists():
            return {}
        records: dict[CallKey, dict[str, Any]] = {}
        for record in read_call_records(self.calls_path):
            records.setdefault(record_key(record), record)
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished call: a single write of one line."""
        self._require_lock()
        if self._calls_fd is None:
            self._calls_fd = os.open(self.calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = (line + "\n").encode("utf-8")
        while data:  # os.write may write less than asked; finish the line
            written = os.write(self._calls_fd, data)
            data = data[written:]
        now = time.monotonic()
        if now - self._last_sync > FSYNC_INTERVAL_S:
            os.fsync(self._calls_fd)
            self._last_sync = now

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("RunStore used outside its context manager")
