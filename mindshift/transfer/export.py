"""`mindshift export`: a run's trials and its summary tables as CSV files.

- `trials.csv`: trials.parquet in the tidy trials schema (docs/trials-schema.md), every column
  of it, one row per answered later turn; an empty cell is an unknown value. Numbers are
  written in full (the shortest text that reads back as the same float), so
  `mindshift import` of this file analyses to the same numbers.
- `turn1.csv`: every turn-1 answer of the run's calls.jsonl, with each option's probability
  (`mindshift.transfer.turn1`: held-out calibration items are only there);
- `tables/*.csv`: the analysis's tables (`RUN_DIR/analysis/tables`), copied as they are, when
  the run has been analysed.

Each file is written beside its final name and renamed into place, and the tables folder is
replaced as a whole, so a reader never sees half an export.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from mindshift.harness.errors import RunDirError
from mindshift.harness.record import read_call_records
from mindshift.harness.run_format import ANALYSIS_DIR, CALLS_FILE, TRIALS_FILE
from mindshift.harness.trials_table import calls_fingerprint, trials_stamp
from mindshift.transfer.errors import TransferError
from mindshift.transfer.turn1 import TURN1_CSV, turn1_table

EXPORT_DIR: Final = "export"
"""Where an export goes by default: RUN_DIR/export."""
TRIALS_CSV: Final = "trials.csv"
TABLES_DIR: Final = "tables"
TURN_ONE: Final = frozenset({1})


@dataclass(frozen=True)
class ExportReport:
    """What `export_run` wrote."""

    out: Path
    trials: Path
    rows: int
    turn1: Path | None
    """The turn-1 file (None: the run has no turn-1 calls, as an imported run without one)."""
    tables: tuple[Path, ...]
    """The summary tables copied (none when the run is not analysed)."""
    analysed: bool

    def describe(self) -> str:
        """What was written, for the terminal."""
        lines = [f"trials: {self.trials} ({self.rows:,} rows)"]
        if self.turn1 is not None:
            lines.append(f"turn-1 answers: {self.turn1}")
        if self.analysed:
            lines.append(f"summary tables: {self.out / TABLES_DIR} ({len(self.tables)} CSV files)")
        else:
            lines.append(
                "the run is not analysed: exported the trials only (run 'mindshift analyse' "
                "first for the summary tables)"
            )
        return "\n".join(lines)


def export_run(run_dir: Path, out: Path | None = None) -> ExportReport:
    """Write RUN_DIR's trials (and its analysis tables, if any) as CSV into `out`
    (default RUN_DIR/export). TransferError when the run cannot be read or `out` written."""
    if not run_dir.is_dir():
        raise TransferError(f"run directory not found: {run_dir}")
    trials = _read_trials(run_dir)
    target = run_dir / EXPORT_DIR if out is None else out
    if target.exists() and not target.is_dir():
        raise TransferError(f"{target} exists and is not a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
        trials_path = target / TRIALS_CSV
        _write_csv(trials, trials_path)
        answers = _turn1(run_dir)
        turn1_path = None
        if answers is not None:
            turn1_path = target / TURN1_CSV
            _write_csv(answers, turn1_path)
        tables = _copy_tables(run_dir / ANALYSIS_DIR / TABLES_DIR, target / TABLES_DIR)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else f"{target}: "
        raise TransferError(f"cannot write the export: {where}{error.strerror or error}") from None
    return ExportReport(
        out=target,
        trials=trials_path,
        rows=len(trials),
        turn1=turn1_path,
        tables=tables,
        analysed=(run_dir / ANALYSIS_DIR / TABLES_DIR).is_dir(),
    )


def _read_trials(run_dir: Path) -> pd.DataFrame:
    """trials.parquet, refused when missing, unreadable or older than calls.jsonl."""
    path = run_dir / TRIALS_FILE
    if not path.is_file():
        raise TransferError(f"no {TRIALS_FILE} in {run_dir}: is this a finished run directory?")
    calls = run_dir / CALLS_FILE
    stamp = trials_stamp(path)
    if stamp is not None and calls.is_file():
        try:
            current = stamp == calls_fingerprint(calls)
        except OSError as error:
            raise TransferError(f"cannot read {calls}: {error.strerror or error}") from None
        if not current:
            raise TransferError(
                f"{path} is older than {CALLS_FILE} (a run stopped before it was rebuilt): "
                f"run 'mindshift analyse {run_dir}', which rebuilds it, then export again"
            )
    try:
        table = pd.read_parquet(path)
    # pyarrow reports a damaged file as ArrowInvalid (a ValueError) or an OSError.
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise TransferError(f"{path} cannot be read as parquet: {reason}") from None
    if table.empty:
        raise TransferError(f"{path} holds no trials")
    return table


def _turn1(run_dir: Path) -> pd.DataFrame | None:
    """The run's turn-1 file, from its calls.jsonl; None without turn-1 calls."""
    calls = run_dir / CALLS_FILE
    if not calls.is_file():
        return None
    try:
        table = turn1_table(read_call_records(calls, strict=False, stages=TURN_ONE))
    except RunDirError as error:
        raise TransferError(str(error)) from None
    return None if table.empty else table


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        table.to_csv(temporary, index=False, encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_tables(source: Path, target: Path) -> tuple[Path, ...]:
    """Copy the analysis's CSV tables into `target`, replacing what an earlier export left
    there; nothing (and `target` untouched) when the run has not been analysed."""
    if not source.is_dir():
        return ()
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}")
    retired = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.old")
    staging.mkdir()
    try:
        for table in sorted(source.glob("*.csv")):
            shutil.copyfile(table, staging / table.name)
        if target.exists():
            target.rename(retired)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return tuple(sorted(target.glob("*.csv")))
