"""The run directory's call log: `calls.jsonl` and `failures.jsonl`, guarded by a lock.

Every finished call is one JSON line, written with a single `write` on an O_APPEND file
descriptor as soon as the call returns, so a crash (even SIGKILL) loses at most the calls in
flight. A torn last line — the process died inside that write — is cut off when the run is
opened again.

(trial_id, stage) is the record's key, and calls.jsonl holds at most one record per key: the
call's current outcome, a success or a final failure (`error` set, after the runner's
retries). A success is never replaced. A failure is replaced only by `retire_failures`,
which a new run calls before it makes any call (unless told to keep failures): the failed
records move to `failures.jsonl`, the history of failed outcomes (each with `retired_at`),
and calls.jsonl is rewritten without them, so the run makes those calls again and appends
their new outcomes. The move is crash-safe: failures.jsonl is appended (and synced) first,
then calls.jsonl is replaced atomically by a rename; a crash between the two leaves the
records in both files, and the next move skips those already in failures.jsonl.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import RunDirError

CALLS_FILE = "calls.jsonl"
FAILURES_FILE = "failures.jsonl"
LOCK_FILE = ".lock"
FSYNC_INTERVAL_S = 2.0
"""Data written survives a killed process at once; fsync only guards against power loss."""

CallKey = tuple[str, int]


def record_key(record: dict[str, Any]) -> CallKey:
    return (str(record["trial_id"]), int(record["stage"]))


def is_failure(record: dict[str, Any]) -> bool:
    """A record of a call that produced no answer."""
    return record.get("error") is not None or record.get("choice") is None


_KEY_PREFIX = re.compile(rb'^\{"trial_id":"([^"\\]*)","stage":(\d+)[,}]')
"""The first bytes of a record as `append` writes it: its key, readable without parsing."""


def _line_key(line: bytes) -> CallKey:
    match = _KEY_PREFIX.match(line)
    if match is not None:
        return (match.group(1).decode(), int(match.group(2)))
    return record_key(json.loads(line))


def _write_all(fd: int, data: bytes) -> None:
    while data:  # os.write may write less than asked; finish the data
        written = os.write(fd, data)
        data = data[written:]


def _encode(record: dict[str, Any]) -> bytes:
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (line + "\n").encode("utf-8")


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
        self.failures_path = run_dir / FAILURES_FILE
        self._lock_fd: int | None = None
        self._calls_fd: int | None = None
        self._last_sync = time.monotonic()
        self._records: dict[CallKey, dict[str, Any]] | None = None
        """Every record, once `load` has read them, kept current by `append_many` and
        `retire_failures`: the end of a run builds trials.parquet from it instead of
        parsing calls.jsonl again (the same records `load` would return)."""

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
        """Cut a torn final line off calls.jsonl and failures.jsonl; returns the bytes removed."""
        self._require_lock()
        removed = 0
        for path in (self.calls_path, self.failures_path):
            if not path.exists():
                continue
            with path.open("rb+") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size == 0:
                    continue
                # Only the tail can be torn: look back for the last newline, not at it all.
                step = 1 << 16
                position = size
                keep = 0
                while position > 0:
                    start = max(0, position - step)
                    handle.seek(start)
                    chunk = handle.read(position - start)
                    newline = chunk.rfind(b"\n")
                    if newline >= 0:
                        keep = start + newline + 1
                        break
                    position = start
                if keep < size:
                    handle.truncate(keep)
                    removed += size - keep
        return removed

    def load(self) -> dict[CallKey, dict[str, Any]]:
        """Every stored call by key (after `repair`), read from calls.jsonl.

        The returned dict is the store's own view: records appended later are added to it.
        """
        self._require_lock()
        records: dict[CallKey, dict[str, Any]] = {}
        if self.calls_path.exists():
            for record in read_call_records(self.calls_path):
                records.setdefault(record_key(record), record)
        self._records = records
        return records

    def records(self) -> dict[CallKey, dict[str, Any]]:
        """Every stored call by key: the view `load` made and appends kept current (read
        from calls.jsonl when nothing was loaded yet)."""
        return self.load() if self._records is None else self._records

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished call: a single write of one line."""
        self.append_many((record,))

    def append_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Write finished calls, each a whole line, in one write where the OS allows."""
        self._require_lock()
        if self._calls_fd is None:
            self._calls_fd = os.open(self.calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        records = list(records)
        # One write for several lines: a crash inside it tears at most the last line, which
        # `repair` cuts; whole lines before it are whole records.
        _write_all(self._calls_fd, b"".join(_encode(record) for record in records))
        if self._records is not None:
            for record in records:
                self._records[record_key(record)] = record
        now = time.monotonic()
        if now - self._last_sync > FSYNC_INTERVAL_S:
            os.fsync(self._calls_fd)
            self._last_sync = now

    def load_failures(self) -> list[dict[str, Any]]:
        """The retired failed records of failures.jsonl, oldest first."""
        self._require_lock()
        if not self.failures_path.exists():
            return []
        return list(read_call_records(self.failures_path))

    def retire_failures(
        self, records: dict[CallKey, dict[str, Any]]
    ) -> dict[CallKey, dict[str, Any]]:
        """Move every failed record out of calls.jsonl into failures.jsonl, so the run makes
        those calls again; returns `records` (as `load` gave them) without the failures."""
        self._require_lock()
        failed = {key: record for key, record in records.items() if is_failure(record)}
        if not failed:
            return records
        retired_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        already = {
            (record_key(record), record.get("finished_at")) for record in self.load_failures()
        }
        history = b"".join(
            _encode({**record, "retired_at": retired_at})
            for key, record in failed.items()
            if (key, record.get("finished_at")) not in already
        )
        if history:
            fd = os.open(self.failures_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(fd, history)
                os.fsync(fd)
            finally:
                os.close(fd)
        self._rewrite_calls_without(set(failed))
        kept = {key: record for key, record in records.items() if key not in failed}
        self._records = kept
        return kept

    def _rewrite_calls_without(self, drop: set[CallKey]) -> None:
        """Replace calls.jsonl by a copy without the lines of `drop`, atomically."""
        if self._calls_fd is not None:  # it would keep appending to the replaced file
            os.close(self._calls_fd)
            self._calls_fd = None
        temporary = self.calls_path.with_name(CALLS_FILE + ".tmp")
        with self.calls_path.open("rb") as source, temporary.open("wb") as target:
            for line in source:
                if line.strip() and _line_key(line) not in drop:
                    target.write(line)
            target.flush()
            os.fsync(target.fileno())
        temporary.replace(self.calls_path)
        directory = os.open(self.run_dir, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        finally:
            os.close(directory)

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("RunStore used outside its context manager")
