"""Reading a run directory: the only module of the analysis that touches files.

Everything downstream is a pure function of the DataFrames returned here, so a run made on
another machine (or last year) analyses the same way, and the measures are testable on tables
built by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.schema import STAGE1_COLUMNS, validate_trials

TRIALS_FILE: Final = "trials.parquet"
CALLS_FILE: Final = "calls.jsonl"
MANIFEST_FILE: Final = "manifest.json"


@dataclass(frozen=True)
class RunData:
    """What the analysis needs from a run directory."""

    run_dir: Path
    trials: pd.DataFrame
    """One row per stage-2 trial, validated against the contract (`analysis.schema`)."""
    stage1: pd.DataFrame | None
    """One row per answered stage-1 call (STAGE1_COLUMNS); None when calls.jsonl is absent."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """The run's manifest.json, or {} when absent or unreadable (it is informative only)."""


def load_run(run_dir: Path | str) -> RunData:
    """Read trials.parquet (required), calls.jsonl and manifest.json (optional) of a run."""
    root = Path(run_dir)
    if not root.is_dir():
        raise AnalysisInputError(f"run directory {root} does not exist")
    calls_path = root / CALLS_FILE
    return RunData(
        run_dir=root,
        trials=load_trials(root / TRIALS_FILE),
        stage1=load_stage1_calls(calls_path) if calls_path.is_file() else None,
        manifest=load_manifest(root / MANIFEST_FILE),
    )


def load_trials(path: Path) -> pd.DataFrame:
    """The validated trials table; raises `AnalysisInputError` if missing, corrupt or empty."""
    if not path.is_file():
        raise AnalysisInputError(f"{path} does not exist: is this a finished run directory?")
    try:
        table = pd.read_parquet(path)
    # pyarrow reports a corrupt file as ArrowInvalid (a ValueError) or an OSError.
    except (OSError, ValueError) as error:
        raise AnalysisInputError(f"{path} cannot be read as parquet: {error}") from error
    if table.empty:
        raise AnalysisInputError(f"{path} holds no trials")
    return validate_trials(table, source=str(path))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, tolerating a truncated last line.

    The run store appends one line per finished call, so a crash (even kill -9) can leave a
    partial final line: that line is skipped. A bad line anywhere else means the file is
    corrupt, and is an error rather than silently lost data.
    """
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as error:
        raise AnalysisInputError(f"{path} cannot be read: {error}") from error
    numbered = [(i + 1, line) for i, line in enumerate(raw_lines) if line.strip()]
    records: list[dict[str, Any]] = []
    for position, (number, line) in enumerate(numbered):
        try:
            # Decoding per line: a truncated multi-byte character only spoils its own line.
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if position == len(numbered) - 1:
                break
            raise AnalysisInputError(f"{path}:{number} is not valid JSON: {error}") from error
        if not isinstance(record, dict):
            raise AnalysisInputError(f"{path}:{number} is not a JSON object")
        records.append(record)
    return records


def stage1_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Stage-1 calls that produced a choice, one row per trial id (a re-stored call: last wins).

    Failed calls (an error, or no choice) are left out: they have no answer to score.
    """
    rows: list[dict[str, str]] = []
    for record in records:
        if record.get("stage") != 1:
            continue
        item = record.get("item")
        choice = record.get("choice")
        failed = record.get("error") is not None or choice is None
        if failed or not isinstance(item, dict) or item.get("correct") is None:
            continue
        rows.append(
            {
                "trial_id": str(record.get("trial_id", "")),
                "model": str(record.get("model", "")),
                "item_id": str(item.get("id", "")),
                "correct": str(item["correct"]),
                "choice": str(choice),
            }
        )
    table = pd.DataFrame(rows, columns=list(STAGE1_COLUMNS))
    # Only records that carry an id can be recognised as the same call stored twice.
    repeated = table["trial_id"].ne("") & table.duplicated(subset="trial_id", keep="last")
    return table.loc[~repeated].reset_index(drop=True)


def load_stage1_calls(path: Path) -> pd.DataFrame:
    """The answered stage-1 calls of a calls.jsonl file (see `stage1_table`)."""
    return stage1_table(read_jsonl(path))


def load_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a dict; {} when absent or unreadable, since nothing depends on it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
