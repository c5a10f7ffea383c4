"""Checking a run directory before anything is written to it.

Every command that reads a run directory (`run`, `run --dry-run`, `cost`, `analyse`) checks
it here first, and a command that refuses it has changed nothing: the checks only read. They
refuse, with one line naming the file (and the line of a log):
- a path that is not a directory, or a directory that cannot be listed;
- for `run`: a directory that is not empty and holds no manifest.json — someone else's files,
  or a run whose manifest was lost, which no config can safely adopt (its own is unknown);
- a directory where one of the run's files belongs, or a file where its `analysis/` belongs;
- a manifest.json that is not the object `harness.manifest` writes;
- a calls.jsonl or failures.jsonl line that is not a whole call record
  (`harness.run_store.read_call_records`), or a batches.jsonl line that is not an event.
A directory that `analyse` or `cost` reads but mindshift did not write (a trials table and
stage-1 calls assembled by hand, with no manifest of mindshift's) is checked for what those
readers use only: its records need not carry everything a run stores.
A torn last line is no damage: it is the call that was in flight when a run was killed.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

from mindshift.harness.errors import RunDirError
from mindshift.harness.manifest import Manifest, read_manifest
from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.run_format import (
    ANALYSIS_DIR,
    BATCHES_FILE,
    CALLS_FILE,
    FAILURES_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    TRIALS_FILE,
    CallKey,
)

RUN_FILES = (MANIFEST_FILE, CALLS_FILE, FAILURES_FILE, TRIALS_FILE, BATCHES_FILE, LOCK_FILE)
"""Names that must be regular files where they exist."""


@dataclass(frozen=True)
class RunDirState:
    """What a run directory holds, as far as a command needs to know before it starts."""

    path: Path
    exists: bool
    """False: the directory does not exist yet (a new run creates it)."""
    manifest: Manifest | None
    """The validated manifest; None when there is none (a new or empty directory)."""
    names: frozenset[str]
    """The directory's entries (empty when it does not exist)."""
    ours: bool = True
    """Whether mindshift wrote it (or is to write it): its logs are checked in full. False
    for a directory assembled by hand for the analysis (a manifest without
    `manifest_version`, or none, and no run to write): only what the readers use is checked."""


def inspect_run_dir(run_dir: Path, *, for_run: bool) -> RunDirState:
    """The directory's state, or RunDirError; reads only.

    `for_run`: the directory is about to receive a run, so it must be new, empty, or hold a
    mindshift run (a manifest). Other commands read whatever run files are there.
    """
    try:
        info = run_dir.stat()
    except FileNotFoundError:
        return RunDirState(run_dir, False, None, frozenset())
    except OSError as error:
        raise RunDirError(f"cannot use run directory {run_dir}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RunDirError(f"run directory {run_dir} exists and is not a directory")
    try:
        names = frozenset(entry.name for entry in run_dir.iterdir())
    except OSError as error:
        raise RunDirError(f"cannot read run directory {run_dir}: {error.strerror}") from None
    for name in RUN_FILES:
        if name in names and not (run_dir / name).is_file():
            raise RunDirError(
                f"{run_dir / name} is not a regular file (a directory where the run's file "
                "belongs?): the run directory is damaged"
            )
    if ANALYSIS_DIR in names and not (run_dir / ANALYSIS_DIR).is_dir():
        raise RunDirError(
            f"{run_dir / ANALYSIS_DIR} is not a directory: the run directory is damaged"
        )
    manifest = (
        read_manifest(run_dir / MANIFEST_FILE, required=for_run) if MANIFEST_FILE in names else None
    )
    if for_run and manifest is None:
        _refuse_foreign(run_dir, names)
    return RunDirState(run_dir, True, manifest, names, ours=for_run or manifest is not None)


_LEFT_BEFORE_A_START = frozenset({LOCK_FILE, MANIFEST_FILE + ".tmp"})
"""What a run killed before its manifest was in place leaves: the lock file, and the
manifest's temporary copy (renamed into place once complete)."""


def _refuse_foreign(run_dir: Path, names: frozenset[str]) -> None:
    """A directory without a manifest may receive a run only when it holds nothing (what a
    run killed before it began leaves counts as nothing)."""
    if CALLS_FILE in names or FAILURES_FILE in names:
        raise RunDirError(
            f"{run_dir} holds a run's calls but no {MANIFEST_FILE}: the config they were made "
            "with is unknown, so no config may resume it; use another --out directory"
        )
    others = sorted(names - _LEFT_BEFORE_A_START)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunDirError(
            f"{run_dir} is not empty and is no mindshift run (no {MANIFEST_FILE}; it holds "
            f"{shown}): use a new or empty --out directory"
        )


def load_logs(state: RunDirState, *, strict: bool | None = None) -> dict[CallKey, CallRecord]:
    """Every record of calls.jsonl by key (the first of a key, as the run store keeps it),
    after checking every line of calls.jsonl, failures.jsonl and batches.jsonl: in full for
    a directory mindshift wrote (`strict` None: `state.ours`), else what the readers use."""
    strict = state.ours if strict is None else strict
    records: dict[CallKey, CallRecord] = {}
    if CALLS_FILE in state.names:
        for record in read_call_records(state.path / CALLS_FILE, strict=strict):
            records.setdefault(record.key, record)
    check_logs(state, calls=False, strict=strict)
    return records


def check_logs(state: RunDirState, *, calls: bool = True, strict: bool | None = None) -> None:
    """RunDirError unless every line of the run's logs is whole (see `load_logs`), keeping
    no record: a reader that needs only the verdict stays flat in memory on a million calls.
    `calls=False` leaves calls.jsonl out (its caller knows it unchanged since it was read)."""
    strict = state.ours if strict is None else strict
    logs = ((CALLS_FILE,) if calls else ()) + (FAILURES_FILE,)
    for name in logs:
        if name in state.names:
            for _ in read_call_records(state.path / name, strict=strict):
                pass
    if BATCHES_FILE in state.names:
        check_batch_log(state.path / BATCHES_FILE)


def check_batch_log(path: Path) -> None:
    """RunDirError unless every whole line of batches.jsonl is a batch event."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunDirError(f"cannot read {path}: {error.strerror}") from None
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            raise RunDirError(
                f"{path}: line {number} is not valid JSON; the log is damaged"
            ) from None
        if not _is_event(event):
            raise RunDirError(f"{path}: line {number} is not a batch event; the log is damaged")


def _is_event(event: object) -> bool:
    if not isinstance(event, dict) or not isinstance(event.get("token"), str):
        return False
    kind = event.get("event")
    if kind == "submitting":
        keys = event.get("keys")
        return (
            isinstance(event.get("model"), str)
            and isinstance(event.get("stage"), int)
            and isinstance(keys, list)
            and all(
                isinstance(key, list)
                and len(key) == 2
                and isinstance(key[0], str)
                and isinstance(key[1], int)
                for key in keys
            )
        )
    if kind in ("submitted", "collected"):
        return isinstance(event.get("batch_id"), str)
    return kind == "abandoned"
