"""`mindshift import`: a run directory built from a trials file, which `mindshift analyse` reads.

The directory holds what the analysis reads and nothing it would have to take on trust:
- `trials.parquet`: the file's trials, checked and completed (`mindshift.transfer.validate`);
- `manifest.json`: a manifest (`harness.manifest.Manifest`) whose config names only the
  paradigm and an experiment (the file's name), and whose `imported` entry says where the
  trials came from: the file's name, its SHA-256, its format, the row count, the paradigm and
  the mindshift version that imported it (and the same of a turn-1 file);
- `calls.jsonl`, only when a turn-1 file is given (`mindshift.transfer.turn1`): its answers as
  turn-1 records, the one place the analysis reads turn-1 answers from. Without one there is
  no calls.jsonl, and the analysis reads the turn-1 answers from the trials
  (`analysis.data.stage1`); docs/trials-schema.md says which numbers that changes.

A bad file leaves the target as it was: every row is checked before anything is written, the
directory is assembled beside the target and renamed into place at the end. A target that is
not empty must be an imported run (which is replaced as a whole): a run mindshift made, or
anything else, is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import pandas as pd

from mindshift.harness.manifest import MANIFEST_VERSION, Manifest, package_versions
from mindshift.harness.record import CallRecord
from mindshift.harness.run_format import CALLS_FILE, MANIFEST_FILE, RECORD_SCHEMA_VERSION
from mindshift.harness.trials_table import write_trials_table
from mindshift.paradigms.registry import paradigm_class
from mindshift.transfer.errors import TransferError
from mindshift.transfer.source import SourceTable, read_source
from mindshift.transfer.turn1 import turn1_records
from mindshift.transfer.validate import trials_from_source

IMPORTED: Final = "imported"
"""The manifest key that marks a run directory as imported (and describes the source)."""
DEFAULT_PARADIGM: Final = "change-of-mind"


@dataclass(frozen=True)
class ImportReport:
    """What `import_trials` wrote."""

    run_dir: Path
    rows: int
    models: tuple[str, ...]
    ignored: tuple[str, ...]
    """Columns of the file the trials schema does not know, left out."""
    turn1_rows: int = 0
    """Turn-1 answers imported from a turn-1 file (0: none given)."""

    def describe(self) -> str:
        """What was written, for the terminal."""
        lines = [
            f"imported {self.rows:,} trials of {len(self.models)} model(s) "
            f"({', '.join(self.models)}) into {self.run_dir}"
        ]
        if self.turn1_rows:
            lines.append(f"and {self.turn1_rows:,} turn-1 answers (in its {CALLS_FILE})")
        if self.ignored:
            lines.append(f"columns not in the trials schema, left out: {', '.join(self.ignored)}")
        lines.append(f"analyse it with: mindshift analyse {self.run_dir}")
        return "\n".join(lines)


def import_trials(
    file: Path,
    run_dir: Path,
    *,
    paradigm: str = DEFAULT_PARADIGM,
    turn1: Path | None = None,
) -> ImportReport:
    """Check every row of `file` (CSV or parquet, the tidy trials schema) and, when given,
    of the turn-1 file `turn1` (`mindshift.transfer.turn1`), and write them as the run
    directory `run_dir`. TransferError (or ConfigError for an unknown paradigm) when a file
    or the target cannot be used; `run_dir` is then untouched."""
    protocol = paradigm_class(paradigm)
    _check_target(run_dir)
    source = read_source(file)
    imported = trials_from_source(source, protocol)
    answers: list[CallRecord] = []
    answers_source = None
    if turn1 is not None:
        answers_source = read_source(turn1)
        answers = turn1_records(answers_source, imported.table, protocol.name)
    manifest = _manifest(source, answers_source, protocol.name, len(imported.table))
    _check_target(run_dir)  # again: the checks took a while on a large file
    _write_run(run_dir, imported.table, answers, manifest)
    models = tuple(sorted({str(model) for model in imported.table["model"]}))
    return ImportReport(run_dir, len(imported.table), models, imported.ignored, len(answers))


def is_imported_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a manifest that marks it as imported."""
    try:
        manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and isinstance(manifest.get(IMPORTED), dict)


def _check_target(run_dir: Path) -> None:
    """The target must be new, empty, or an imported run."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise TransferError(f"{run_dir} exists and is not a directory")
    try:
        empty = next(run_dir.iterdir(), None) is None
    except OSError as error:
        raise TransferError(f"cannot read {run_dir}: {error.strerror or error}") from None
    if not empty and not is_imported_run(run_dir):
        raise TransferError(
            f"{run_dir} is not empty and is not an imported run: use a new or empty "
            "directory (an import replaces only a run it made)"
        )


def _version() -> str:
    try:
        return metadata.version("mindshift")
    except metadata.PackageNotFoundError:
        return "unknown"


def _described(source: SourceTable, rows: int) -> dict[str, Any]:
    return {
        "source": source.path.name,
        "sha256": source.sha256,
        "format": source.format,
        "rows": rows,
    }


def _manifest(
    trials: SourceTable, answers: SourceTable | None, paradigm: str, rows: int
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    imported: dict[str, Any] = {
        **_described(trials, rows),
        "paradigm": paradigm,
        "mindshift_version": _version(),
        "imported_at": now,
    }
    payload: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        # What the analysis and the CLI read of a config: the paradigm (whose columns the
        # trials hold) and a name for the report. No model was configured or called here.
        "config": {"experiment": {"name": trials.path.stem, "paradigm": paradigm}},
        "started_at": now,
        IMPORTED: imported,
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "resumes": [],
    }
    if answers is not None:
        imported["turn1"] = _described(answers, len(answers))
        payload["record_schema"] = RECORD_SCHEMA_VERSION  # the records of its calls.jsonl
    Manifest.model_validate(payload)  # it is what `mindshift analyse` and `run` will read
    return payload


def _write_run(
    run_dir: Path, table: pd.DataFrame, answers: list[CallRecord], manifest: dict[str, Any]
) -> None:
    """Assemble the run beside `run_dir`, then rename it into place (replacing an imported
    run or an empty directory there). The turn-1 records go into calls.jsonl before the
    trials table is written, so the table is stamped as built from that calls.jsonl (and
    `mindshift analyse` never mistakes it for a stale table to rebuild from the calls)."""
    parent = run_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{run_dir.name}.import-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
    except OSError as error:
        raise TransferError(f"cannot create {run_dir}: {error.strerror or error}") from None
    try:
        if answers:
            with (staging / CALLS_FILE).open("wb") as handle:
                for record in answers:
                    handle.write(record.to_line())
        write_trials_table(staging, table)
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (staging / MANIFEST_FILE).write_text(text, encoding="utf-8")
        _swap_into_place(staging, run_dir)
    except OSError as error:
        raise TransferError(f"cannot write {run_dir}: {error.strerror or error}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, run_dir: Path) -> None:
    if not run_dir.exists():
        staging.rename(run_dir)
        return
    if next(run_dir.iterdir(), None) is None:
        run_dir.rmdir()
        staging.rename(run_dir)
        return
    retired = run_dir.absolute().parent / f".{run_dir.name}.replaced-{uuid.uuid4().hex[:12]}"
    run_dir.rename(retired)
    try:
        staging.rename(run_dir)
    except OSError:
        with contextlib.suppress(OSError):
            retired.rename(run_dir)  # the old imported run back where it was
        raise
    shutil.rmtree(retired, ignore_errors=True)
