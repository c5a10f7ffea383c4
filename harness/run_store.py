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


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)
"""Built once: `json.dumps` with options builds an encoder per call. The same bytes as
`json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)`, NaN and
Infinity still refused; a record is a tree of fresh JSON values, never circular, so the
circularity check only cost time (bench/bench_throughput.py)."""
_encode_json = _ENCODER.encode


def _encode(record: dict[str, Any]) -> bytes:
    return (_encode_json(record) + "\n").encode("utf-8")


MAX_LINE_BYTES = 64 << 20
"""No record is this long (a prompt and a raw response are some kilobytes): a longer line is
damage, reported before it is parsed."""


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _need(record: dict[str, Any], key: str, kinds: tuple[type, ...], optional: bool) -> str | None:
    """Why `record[key]` does not fit `kinds` (None when it does); bool is no int here."""
    if key not in record:
        return None if optional else f"has no '{key}'"
    value = record[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in kinds:
        return f"'{key}' is {_kind(value)}"
    if not isinstance(value, kinds):
        return f"'{key}' is {_kind(value)}"
    return None


_REQUIRED: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("trial_id", (str,)),
    ("stage", (int,)),
    ("model", (str,)),
    ("item", (dict,)),
    ("condition", (str,)),
    ("repeat", (int,)),
)
_NULLABLE: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("choice", (str,)),
    ("error", (str,)),
    ("spec", (str,)),
    ("factors", (dict,)),
    ("initial_trial_id", (str,)),
    ("request", (dict,)),
    ("readout", (dict,)),
    ("usage", (dict,)),
    ("latency_s", (int, float)),
    ("attempts", (int,)),
    ("finished_at", (str,)),
)


_REQUIRED_TO_READ = frozenset({"trial_id", "stage", "model", "item"})
"""What even a log assembled by hand must hold for the analysis and the cost report."""


def record_problem(record: object, *, strict: bool = True) -> str | None:
    """Why a decoded line is not a call record the harness can use; None when it is one.

    Checks every key the runner, the trials table, the cost report and the analysis read,
    with its type, so a damaged log is refused when it is opened rather than failing half
    way through a run (or silently producing wrong tables). `strict` False: a log that
    mindshift did not write (no manifest of its own) needs only the keys the readers use,
    each of the right type where present.
    """
    if not isinstance(record, dict):
        return f"is a JSON {_kind(record)}, not a call record"
    if not strict:
        return _readable_problem(record)
    for key, kinds in _REQUIRED:
        problem = _need(record, key, kinds, optional=False)
        if problem is not None:
            return problem
    for key, kinds in _NULLABLE:
        problem = _need(record, key, kinds, optional=True)
        if problem is not None:
            return problem
    if not record["trial_id"] or record["stage"] < 1 or record["repeat"] < 0:
        return "has an empty 'trial_id', a 'stage' below 1 or a negative 'repeat'"
    item = record["item"]
    labels, options = item.get("labels"), item.get("options")
    if (
        not isinstance(item.get("id"), str)
        or not isinstance(item.get("correct"), str)
        or not isinstance(labels, list)
        or not all(isinstance(label, str) for label in labels)
        or not isinstance(options, list)
    ):
        return "has an 'item' without a text 'id', 'correct' and a list of text 'labels'"
    readout = record.get("readout")
    if readout is not None:
        probs = readout.get("probs")
        if probs is not None and (
            not isinstance(probs, dict)
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in probs.values()
            )
        ):
            return "has 'readout.probs' that are not numbers by label"
    if not is_failure(record):
        if record["stage"] > 1 and not isinstance(record.get("initial_trial_id"), str):
            return "is a stage-2 answer without an 'initial_trial_id'"
        request = record.get("request")
        if record["stage"] > 1 and not isinstance(request, dict):
            return "is a stage-2 answer without its 'request'"
        if isinstance(request, dict) and not isinstance(request.get("situation") or {}, dict):
            return "has a 'request.situation' that is not an object"
    return None


def _readable_problem(record: dict[str, Any]) -> str | None:
    for key, kinds in (*_REQUIRED, *_NULLABLE):
        problem = _need(record, key, kinds, optional=key not in _REQUIRED_TO_READ)
        if problem is not None:
            return problem
    item = record["item"]
    for key in ("id", "correct"):
        if not isinstance(item.get(key), str):
            return f"has an 'item' without a text '{key}'"
    labels = item.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not all(isinstance(label, str) for label in labels)
    ):
        return "has 'item.labels' that are not a list of texts"
    return None


def _no_constant(name: str) -> None:
    """The run store writes no NaN or Infinity (`allow_nan=False`): one read back is damage."""
    raise ValueError(f"{name} is not a JSON value")


def read_call_records(path: Path, *, strict: bool = True) -> Iterator[dict[str, Any]]:
    """Records of a calls.jsonl, skipping a torn final line (the call that was in flight).

    Any other line that is not a whole call record (undecodable, not JSON, JSON of another
    shape, a key missing or of the wrong type) raises RunDirError naming the file and line.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise RunDirError(
            f"{path} is a directory, not a file: the run directory is damaged"
        ) from None
    except OSError as error:
        raise RunDirError(f"cannot read {path}: {error.strerror}") from None
    lines = data.split(b"\n")
    # Everything after the last newline is an unfinished write, or empty.
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            raise RunDirError(
                f"{path}: line {number} is {len(line):,} bytes long; the log is damaged"
            )
        try:
            record = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise RunDirError(
                f"{path}: line {number} is not UTF-8 text; the log is damaged"
            ) from None
        except (ValueError, RecursionError):  # JSONDecodeError, NaN, a 5000-digit number
            raise RunDirError(
                f"{path}: line {number} is not valid JSON; the log is damaged"
            ) from None
        problem = record_problem(record, strict=strict)
        if problem is not None:
            raise RunDirError(f"{path}: line {number} {problem}; the log is damaged")
        yield record


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

    def adopt(self, records: dict[CallKey, dict[str, Any]]) -> None:
        """Take `records` as what `load` would return: the run directory's check read them
        under this store's lock already (`harness.run_dir.load_logs`)."""
        self._require_lock()
        self._records = records

    def records(self) -> dict[CallKey, dict[str, Any]]:
        """Every stored call by key: the view `load` made and appends kept current (read
        from calls.jsonl when nothing was loaded yet)."""
        return self.load() if self._records is None else self._records

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished call: a single write of one line."""
        self.append_many((record,))

    def append_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Write finished calls, each a whole line, in one write where the OS allows.

        A write the OS refuses (a full disk, a read-only file system) is undone — the file
        is cut back to its previous length, so no torn line sits before a later record — and
        raised as RunDirError: the calls stored before are intact and the run resumes.
        """
        self._require_lock()
        records = list(records)
        data = b"".join(_encode(record) for record in records)
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
                self._records[record_key(record)] = record
        now = time.monotonic()
        if now - self._last_sync > FSYNC_INTERVAL_S:
            try:
                os.fsync(self._calls_fd)
            except OSError as error:
                raise _write_error(self.calls_path, error) from None
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
