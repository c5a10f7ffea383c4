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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import pandas as pd

from mindshift.analysis.data.prepare import Prepared, mark_as_read, prepare_trials
from mindshift.analysis.data.schema import (
    CALIBRATION,
    MAIN,
    STAGE1_COLUMNS,
    STAGE1_EXTRA_COLUMNS,
    validate_trials,
)
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.engines.logodds import BAYES_CLIP
from mindshift.analysis.errors import AnalysisInputError
from mindshift.harness.errors import RunDirError
from mindshift.harness.record import StoredAnswer, read_stored_answers
from mindshift.harness.run_format import CALLS_FILE, MANIFEST_FILE, TRIALS_FILE
from mindshift.harness.trial_ids import CALIBRATION_CONDITION

STAGE1_ONLY: Final = frozenset({1})
"""The turns the analysis reads from calls.jsonl: the first (every later turn is in the
trials table already)."""
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
        (choice_support, w_same, w_opposite; only those written in the config: a value left to
        the agent's default is not restated here)."""
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


class Stage1Row(NamedTuple):
    """One row of the stage-1 table (its fields: STAGE1_COLUMNS + STAGE1_EXTRA_COLUMNS)."""

    trial_id: str
    model: str
    item_id: str
    correct: str
    choice: str
    split: str
    """MAIN, or CALIBRATION for a held-out item's call."""
    probs: tuple[float, ...] | None
    """The option probabilities in label order; None when censored or unknown."""
    correct_index: int
    choice_index: int
    """Positions in label order; -1 when unknown."""


def _stage1_row(record: StoredAnswer) -> Stage1Row | None:
    """A stage-1 call's row of the stage-1 table; None for a call with no answer to score."""
    if record.failed:
        return None
    item = record.item
    labels = list(item.labels)
    correct, chosen = item.correct, str(record.choice)
    probs = record.probs
    in_order = (
        tuple(float(probs[label]) for label in labels)
        if probs is not None and labels and all(label in probs for label in labels)
        else None
    )
    return Stage1Row(
        trial_id=record.trial_id,
        model=record.model,
        item_id=item.item_id,
        correct=correct,
        choice=chosen,
        split=CALIBRATION if record.condition == CALIBRATION_CONDITION else MAIN,
        probs=in_order,
        correct_index=labels.index(correct) if correct in labels else -1,
        choice_index=labels.index(chosen) if chosen in labels else -1,
    )


def stage1_table(records: Iterable[StoredAnswer]) -> pd.DataFrame:
    """Stage-1 calls that produced a choice, one row per trial id (a re-stored call: last wins).

    Failed calls (an error, or no choice) are left out: they have no answer to score; records
    of later turns are passed over. Columns: STAGE1_COLUMNS plus `split` ("main", or
    "calibration" for the held-out items asked at stage 1 only), `probs` (option
    probabilities in label order, or None when the readout was censored or is unknown),
    `correct_index` and `choice_index` (positions in that order; -1 when unknown).
    """
    rows = [
        row for record in records if record.stage == 1 and (row := _stage1_row(record)) is not None
    ]
    table = pd.DataFrame(rows, columns=list(STAGE1_COLUMNS + STAGE1_EXTRA_COLUMNS))
    # Only records that carry an id can be recognised as the same call stored twice.
    repeated = table["trial_id"].ne("") & table.duplicated(subset="trial_id", keep="last")
    return table.loc[~repeated].reset_index(drop=True)


def load_stage1_calls(path: Path) -> pd.DataFrame:
    """The answered stage-1 calls of a calls.jsonl file (see `stage1_table`).

    The log is read and checked as the harness reads it (`harness.record.read_stored_answers`,
    not strict: a log assembled by hand needs only the keys the analysis reads), each record
    built as the answer alone, without its request and response. A torn last line (the
    call in flight when a run was killed) is skipped; any other line that is not a call
    record is an `AnalysisInputError` naming the file and the line. Only turn-1 records are
    parsed: the lines of later turns, a million in a large run, are recognised by their
    first bytes (`harness.run_format.line_key`) and passed over.
    """
    try:
        return stage1_table(read_stored_answers(path, strict=False, stages=STAGE1_ONLY))
    except RunDirError as error:
        raise AnalysisInputError(str(error)) from None


def load_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a dict; {} when absent or unreadable, since nothing depends on it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
