"""Reading a run directory: the only module of the analysis that touches files.

Everything downstream is a pure function of the DataFrames returned here, so a run made on
another machine (or last year) analyses the same way, and the measures are testable on tables
built by hand.

`load_run` returns the trials *prepared* (`analysis.data.prepare`: framed on the displayed answer,
on the confidence scale of `prior`, with the Bayes posterior at `bayes_clip`), exactly as
`mindshift analyse` measures them, so a measure computed in a notebook from `run.trials`
equals the report's. The table as read is `run.raw_trials`; measures refuse it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from analysis.data.prepare import Prepared, mark_as_read, prepare_trials
from analysis.data.schema import (
    CALIBRATION,
    MAIN,
    STAGE1_COLUMNS,
    STAGE1_EXTRA_COLUMNS,
    validate_trials,
)
from analysis.data.temperature import Prior
from analysis.engines.logodds import BAYES_CLIP
from analysis.errors import AnalysisInputError

TRIALS_FILE: Final = "trials.parquet"
CALLS_FILE: Final = "calls.jsonl"
CALIBRATION_CONDITION: Final = "calibration"
"""The condition the harness records on the stage-1 calls of calibration items (the
analysis reads the files, so it names the value rather than importing the harness)."""
MANIFEST_FILE: Final = "manifest.json"
KNOWN_PARAMETERS: Final = ("choice_support", "w_same", "w_opposite")
"""The simulated agent's update parameters the report compares its estimates with."""


@dataclass(frozen=True)
class RunData:
    """What the analysis needs from a run directory."""

    run_dir: Path
    prepared: Prepared
    """The trials prepared for the measures, with the stage-1 facts and temperatures."""
    raw_trials: pd.DataFrame
    """One row per stage-2 trial as read, validated against the contract
    (`analysis.data.schema`): unframed, read-out confidences. Measures refuse it."""
    stage1: pd.DataFrame | None
    """One row per answered stage-1 call (see `stage1_table`); None without calls.jsonl."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """The run's manifest.json, or {} when absent or unreadable (it is informative only)."""

    @property
    def trials(self) -> pd.DataFrame:
        """One row per stage-2 trial, prepared as the report measures it (framed, on the
        `prior` scale, with `bayes_post`): the input of every measure."""
        return self.prepared.trials

    @property
    def known_parameters(self) -> dict[str, dict[str, float]]:
        """Per simulated model (`sim:` spec), the update parameters its config states
        (choice_support, w_same, w_opposite; only those written in the config: the agent's
        defaults belong to the harness, which the analysis does not import)."""
        config = self.manifest.get("config")
        models = config.get("models") if isinstance(config, dict) else None
        known: dict[str, dict[str, float]] = {}
        for entry in models if isinstance(models, list) else []:
            if not isinstance(entry, dict) or not str(entry.get("spec", "")).startswith("sim:"):
                continue
            params = entry.get("params")
            values = {
                name: float(params[name])
                for name in KNOWN_PARAMETERS
                if isinstance(params, dict) and isinstance(params.get(name), int | float)
            }
            if values:
                known[str(entry.get("id"))] = values
        return known


def load_run(
    run_dir: Path | str, *, prior: Prior = "auto", bayes_clip: float = BAYES_CLIP
) -> RunData:
    """Read trials.parquet (required), calls.jsonl and manifest.json (optional) of a run, and
    prepare the trials on the `prior` scale with the Bayes baseline clipped at `bayes_clip`
    (the defaults are `mindshift analyse`'s)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise AnalysisInputError(f"run directory {root} does not exist")
    calls_path = root / CALLS_FILE
    raw = load_trials(root / TRIALS_FILE)
    stage1 = load_stage1_calls(calls_path) if calls_path.is_file() else None
    return RunData(
        run_dir=root,
        prepared=prepare_trials(raw, stage1, prior=prior, bayes_clip=bayes_clip),
        raw_trials=raw,
        stage1=stage1,
        manifest=load_manifest(root / MANIFEST_FILE),
    )


def load_trials(path: Path) -> pd.DataFrame:
    """The validated trials table as read (marked so, see `analysis.data.prepare`); raises
    `AnalysisInputError` if missing, corrupt or empty."""
    if not path.is_file():
        raise AnalysisInputError(f"{path} does not exist: is this a finished run directory?")
    try:
        table = pd.read_parquet(path)
    # pyarrow reports a corrupt file as ArrowInvalid (a ValueError) or an OSError.
    except (OSError, ValueError) as error:
        raise AnalysisInputError(f"{path} cannot be read as parquet: {error}") from error
    if table.empty:
        raise AnalysisInputError(f"{path} holds no trials")
    return mark_as_read(validate_trials(table, source=str(path)), str(path))


_STAGE2_PREFIX: Final = re.compile(rb'\{"trial_id":"[^"\\]*","stage":2[,}]')
"""The first bytes of a stage-2 record as the run store writes it (compact JSON, trial_id
then stage). The analysis needs only stage-1 records from calls.jsonl, and a large run holds
a million stage-2 lines: recognising them by this prefix, without parsing, makes loading
fast and flat in memory. A line in any other layout is parsed in full, so nothing is lost."""


def iter_jsonl(path: Path, skip: re.Pattern[bytes] | None = None) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, streamed, tolerating a truncated last line.

    The run store appends one line per finished call, so a crash (even kill -9) can leave a
    partial final line: that line is skipped. A bad line anywhere else means the file is
    corrupt, and is an error rather than silently lost data. Lines that `skip` matches at
    their start are passed over without parsing.
    """
    try:
        handle = path.open("rb")
    except OSError as error:
        raise AnalysisInputError(f"{path} cannot be read: {error}") from error
    with handle:
        pending: tuple[int, Exception] | None = None  # a bad line: fatal unless it is the last
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if pending is not None:
                bad_number, reason = pending
                raise AnalysisInputError(f"{path}:{bad_number} is not valid JSON: {reason}")
            if skip is not None and skip.match(line):
                continue
            try:
                # Decoding per line: a truncated multi-byte character only spoils its own line.
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as bad:
                pending = (number, bad)
                continue
            if not isinstance(record, dict):
                raise AnalysisInputError(f"{path}:{number} is not a JSON object")
            yield record


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSON-lines file (see `iter_jsonl`)."""
    return list(iter_jsonl(path))


def _option_probs(record: dict[str, Any], labels: list[str]) -> tuple[float, ...] | None:
    """The renormalised option probabilities in label order; None when unknown (censored)."""
    readout = record.get("readout")
    probs = readout.get("probs") if isinstance(readout, dict) else None
    if not isinstance(probs, dict) or not labels:
        return None
    values = [probs.get(label) for label in labels]
    if any(not isinstance(value, int | float) for value in values):
        return None
    return tuple(float(value) for value in values)  # type: ignore[arg-type]


def stage1_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Stage-1 calls that produced a choice, one row per trial id (a re-stored call: last wins).

    Failed calls (an error, or no choice) are left out: they have no answer to score.
    Columns: STAGE1_COLUMNS plus `split` ("main", or "calibration" for the held-out items
    asked at stage 1 only), `probs` (option probabilities in label order, or None),
    `correct_index` and `choice_index` (positions in that order; -1 when unknown).
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        if record.get("stage") != 1:
            continue
        item = record.get("item")
        choice = record.get("choice")
        failed = record.get("error") is not None or choice is None
        if failed or not isinstance(item, dict) or item.get("correct") is None:
            continue
        raw_labels = item.get("labels")
        labels = [str(label) for label in raw_labels] if isinstance(raw_labels, list) else []
        correct, chosen = str(item["correct"]), str(choice)
        rows.append(
            {
                "trial_id": str(record.get("trial_id", "")),
                "model": str(record.get("model", "")),
                "item_id": str(item.get("id", "")),
                "correct": correct,
                "choice": chosen,
                "split": CALIBRATION if record.get("condition") == CALIBRATION_CONDITION else MAIN,
                "probs": _option_probs(record, labels),
                "correct_index": labels.index(correct) if correct in labels else -1,
                "choice_index": labels.index(chosen) if chosen in labels else -1,
            }
        )
    table = pd.DataFrame(rows, columns=list(STAGE1_COLUMNS + STAGE1_EXTRA_COLUMNS))
    # Only records that carry an id can be recognised as the same call stored twice.
    repeated = table["trial_id"].ne("") & table.duplicated(subset="trial_id", keep="last")
    return table.loc[~repeated].reset_index(drop=True)


def load_stage1_calls(path: Path) -> pd.DataFrame:
    """The answered stage-1 calls of a calls.jsonl file (see `stage1_table`)."""
    return stage1_table(iter_jsonl(path, skip=_STAGE2_PREFIX))


def load_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a dict; {} when absent or unreadable, since nothing depends on it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
