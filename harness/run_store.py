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

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from mindshift.harness.errors import RunDirError
from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.run_format import CALLS_FILE, FAILURES_FILE, LOCK_FILE, CallKey, line_key

FSYNC_INTERVAL_S = 2.0
"""Data written survives a killed process at once; fsync only guards against power loss."""


def _line_key(line: bytes) -> CallKey:
    key = line_key(line)
    if key is not None:
        return key
    record = json.loads(line)
    return (str(record["trial_id"]), int(record["stage"]))


def _write_all(fd: int, data: bytes) -> None:
    while data:  # os.write may write less than asked; finish the data
        written = os.write(fd, data)
        data = data[written:]


def _write_error(path: Path, error: OSError) -> RunDirError:
    return RunDirError(
        f"cannot write {path}: {error.strerror or error}; every call stored before is intact: "
        "fix that, then run the same command again to resume"
    )


def _append_whole(path: Path, data: bytes) -> None:
    """Append whole lines and sync them; on failure cut the file back to its old length."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise _write_error(path, error) from None
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path) -> int:
    """Cut everything after the last newline of `path`; returns the bytes removed."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
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
        return size - keep


class RunStore:
    """Exclusive access to one run directory's call log; use as a context manager."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.calls_path = run_dir / CALLS_FILE
        self.failures_path = run_dir / FAILURES_FILE
        self._lock_fd: int | None = None
        self._calls_fd: int | None = None
        self._last_sync = time.monotonic()
        self._records: dict[CallKey, CallRecord] | None = None
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
        try:
            if self._calls_fd is not None:
                fd, self._calls_fd = self._calls_fd, None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError:
            pass  # the data is written; only its flush to the disk failed (a full disk)
        finally:
            if self._lock_fd is not None:
                # Closing the descriptor releases the lock, whatever else failed.
                os.close(self._lock_fd)
                self._lock_fd = None

    def repair(self) -> int:
        """Cut a torn final line off calls.jsonl and failures.jsonl; returns the bytes removed."""
        self._require_lock()
        removed = 0
        for path in (self.calls_path, self.failures_path):
            if not path.exists():
                continue
            try:
                removed += _cut_torn_tail(path)
            except OSError as error:
                raise _write_error(path, error) from None
        return removed

    def load(self) -> dict[CallKey, CallRecord]:
        """Every stored call by key (after `repair`), read from calls.jsonl.

        The returned dict is the store's own view: records appended later are added to it.
        """
        self._require_lock()
        records: dict[CallKey, CallRecord] = {}
        if self.calls_path.exists():
            for record in read_call_records(self.calls_path):
                records.setdefault(record.key, record)
        self._records = records
        return records

    def adopt(self, records: dict[CallKey, CallRecord]) -> None:
        """Take `records` as what `load` would return: the run directory's check read them
        under this store's lock already (`harness.run_dir.load_logs`)."""
        self._require_lock()
        self._records = records

    def records(self) -> dict[CallKey, CallRecord]:
        """Every stored call by key: the view `load` made and appends kept current (read
        from calls.jsonl when nothing was loaded yet)."""
        return self.load() if self._records is None else self._records

    def append(self, record: CallRecord) -> None:
        """Write one finished call: a single write of one line."""
        self.append_many((record,))

    def append_many(self, records: Iterable[CallRecord]) -> None:
        """Write finished calls, each a whole line, in one write where the OS allows.

        A write the OS refuses (a full disk, a read-only file system) is undone — the file
        is cut back to its previous length, so no torn line sits before a later record — and
        raised as RunDirError: the calls stored before are intact and the run resumes.
        """
        self._require_lock()
        records = list(records)
        data = b"".join(record.to_line() for record in records)
        try:
            if self._calls_fd is None:
                self._calls_fd = os.open(
                    self.calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
                )
            size = os.fstat(self._calls_fd).st_size
        except OSError as error:
            raise _write_error(self.calls_path, error) from None
        try:
            # One write for several lines: a crash inside it tears at most the last line,
            # which `repair` cuts; whole lines before it are whole records.
            _write_all(self._calls_fd, data)
        except OSError as error:
            with contextlib.suppress(OSError):  # else `repair` cuts the torn line next time
                os.ftruncate(self._calls_fd, size)
            raise _write_error(self.calls_path, error) from None
        if self._records is not None:
            for record in records:
                self._records[record.key] = record
        now = time.monotonic()
        if now - self._last_sync > FSYNC_INTERVAL_S:
            try:
                os.fsync(self._calls_fd)
            except OSError as error:
                raise _write_error(self.calls_path, error) from None
            self._last_sync = now

    def load_failures(self) -> list[CallRecord]:
        """The retired failed records of failures.jsonl, oldest first."""
        self._require_lock()
        if not self.failures_path.exists():
            return []
        return list(read_call_records(self.failures_path))

    def retire_failures(self, records: dict[CallKey, CallRecord]) -> dict[CallKey, CallRecord]:
        """Move every failed record out of calls.jsonl into failures.jsonl, so the run makes
        those calls again; returns `records` (as `load` gave them) without the failures."""
        self._require_lock()
        failed = {key: record for key, record in records.items() if record.failed}
        if not failed:
            return records
        retired_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        already = {(record.key, record.finished_at) for record in self.load_failures()}
        history = b"".join(
            record.retired(retired_at).to_line()
            for key, record in failed.items()
            if (key, record.finished_at) not in already
        )
        if history:
            _append_whole(self.failures_path, history)
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
        try:
            with self.calls_path.open("rb") as source, temporary.open("wb") as target:
                for line in source:
                    if line.strip() and _line_key(line) not in drop:
                        target.write(line)
                target.flush()
                os.fsync(target.fileno())
            temporary.replace(self.calls_path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()  # calls.jsonl itself is untouched until the rename
            raise _write_error(self.calls_path, error) from None
        directory = os.open(self.run_dir, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        except OSError:
            pass  # the rename is done; only its flush to the disk failed
        finally:
            os.close(directory)

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("RunStore used outside its context manager")
