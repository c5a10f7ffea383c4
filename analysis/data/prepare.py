"""Preparing a trials table for the measures: framing, calibration and the Bayes baseline.

Every measure reads the trials *prepared*: framed on the answer displayed as the model's own
(`analysis.data.framing`: the answer-wrong control), on the confidence scale the analysis chose
(`analysis.data.temperature`: temperature scaling, the `prior` mode) and with the Bayes
posterior (`analysis.engines.bayes`, probabilities clipped to [bayes_clip, 1 - bayes_clip]). A
measure computed on the table as read would silently differ from the report, so preparation is
explicit and recorded:

- `prepare_trials(trials, stage1, prior=..., bayes_clip=...)` prepares a table and marks it:
  `DataFrame.attrs[PREPARED]` holds its `Preparation` (prior, clip, temperatures applied).
  pandas carries attrs through filtering, assign, concat and merge, so a subset of a
  prepared table is still known to be prepared.
- Preparing a prepared table frames and calibrates nothing again: it is returned as it is,
  provided the settings asked for (None: as prepared) are the ones it was prepared with.
- `load_run` returns `run.trials` prepared (and `run.raw_trials` as read, marked AS_READ).
- Every public measure calls `ensure_prepared`: a prepared table passes; a table as read from
  a run is refused (preparing it without the run's stage-1 calls would skip its calibration
  split); a table with the columns preparation adds but without its record (the record was
  dropped) is refused, as preparing it again would frame and calibrate twice; any other
  table (one built by hand) is prepared as `prepare_trials(trials)` prepares it, which is
  what `compute_results(trials)` computes from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import pandas as pd

from mindshift.analysis.data.framing import frame_on_displayed
from mindshift.analysis.data.schema import TRIAL_COLUMNS, model_ids, validate_trials
from mindshift.analysis.data.stage1 import complete_stage1
from mindshift.analysis.data.temperature import (
    PRIOR_MODES,
    Prior,
    apply_calibration,
    chosen_temperatures,
    temperatures,
)
from mindshift.analysis.engines.bayes import with_bayes
from mindshift.analysis.engines.logodds import BAYES_CLIP, check_bound
from mindshift.analysis.errors import AnalysisInputError

PREPARED: Final = "mindshift.prepared"
"""The `DataFrame.attrs` key of a prepared table's `Preparation`."""
AS_READ: Final = "mindshift.as_read"
"""The `DataFrame.attrs` key that marks a trials table as read from a run directory."""
PREPARATION_COLUMNS: Final = ("reframed", "stage1_choice", "initial_confidence_raw")
"""Columns that framing and calibration add: their presence proves a table was prepared."""


@dataclass(frozen=True)
class Preparation:
    """How a prepared table was prepared (kept in its `attrs`, small by design: pandas copies
    attrs along with the table)."""

    prior: Prior
    """The calibration mode (`analysis.data.temperature`)."""
    bayes_clip: float
    """Probabilities were clipped to [bayes_clip, 1 - bayes_clip] before every logit."""
    applied: Mapping[str, float] = field(default_factory=dict)
    """The temperature applied per model (models absent kept raw confidences)."""


@dataclass(frozen=True)
class Prepared:
    """The trials ready for every measure, and what it took to get them there."""

    trials: pd.DataFrame
    """Framed, on the chosen confidence scale, with `bayes_shift` and `bayes_post`; marked."""
    stage1: pd.DataFrame
    """The stage-1 calls completed with what the trials know (`complete_stage1`)."""
    temperatures: pd.DataFrame
    """The fitted temperatures (`analysis.data.temperature.temperatures`)."""
    preparation: Preparation

    @property
    def chosen(self) -> dict[str, float]:
        """The temperature applied per model."""
        return dict(self.preparation.applied)

    @property
    def prior(self) -> Prior:
        return self.preparation.prior

    @property
    def bayes_clip(self) -> float:
        return self.preparation.bayes_clip

    @property
    def stage1_trials(self) -> pd.DataFrame:
        """The trials with their stage-1 columns as the model answered (unframed, raw
        confidences): what the stage-1 facts (initial accuracy, calibration) are read from."""
        return stage1_view(self.trials)


def preparation_of(trials: pd.DataFrame) -> Preparation | None:
    """The table's `Preparation`, or None if it was not prepared."""
    found = trials.attrs.get(PREPARED)
    return found if isinstance(found, Preparation) else None


def is_prepared(trials: pd.DataFrame) -> bool:
    """Whether `trials` is a prepared table (see the module doc)."""
    return preparation_of(trials) is not None


def mark_as_read(trials: pd.DataFrame, source: str) -> pd.DataFrame:
    """`trials` marked as read from `source` (a run directory's trials.parquet)."""
    trials.attrs = {AS_READ: source}
    return trials


def stage1_view(trials: pd.DataFrame) -> pd.DataFrame:
    """A prepared table with its stage-1 columns restored as the model answered them.

    Framing keeps the stage-1 answer in `stage1_choice` / `stage1_confidence` /
    `stage1_correct` and calibration the read-out confidence in `initial_confidence_raw`
    (equal to `stage1_confidence` on every row framing left alone).
    """
    if "stage1_choice" not in trials.columns:
        return trials
    return trials.assign(
        initial_choice=trials["stage1_choice"],
        initial_confidence=trials["stage1_confidence"],
        initial_correct=trials["stage1_correct"],
    )


def _check_prior(prior: Prior) -> Prior:
    if prior not in PRIOR_MODES:
        raise AnalysisInputError(f"unknown prior {prior!r} (known: {', '.join(PRIOR_MODES)})")
    return prior


def _same_temperatures(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return set(a) == set(b) and all(math.isclose(a[m], b[m], rel_tol=1e-9, abs_tol=0.0) for m in a)


def prepare_trials(
    trials: pd.DataFrame,
    stage1: pd.DataFrame | None = None,
    *,
    prior: Prior | None = None,
    bayes_clip: float | None = None,
) -> Prepared:
    """Validate, frame (`analysis.data.framing`), calibrate (`analysis.data.temperature`) and
    add the Bayes baseline (`analysis.engines.bayes`): the steps before any measure.

    `prior` and `bayes_clip` default to "auto" and 0.01 for a table not yet prepared, and to
    the table's own settings for a prepared one. A prepared table is not framed or calibrated
    again: it is returned as it is, with the stage-1 facts rebuilt from its stage-1 columns;
    asking for other settings, or passing stage-1 calls that choose other temperatures than
    the ones it carries, is an `AnalysisInputError` (prepare the table as read instead).
    """
    done = preparation_of(trials)
    if done is not None:
        return _reuse(trials, done, stage1, prior, bayes_clip)
    if any(name in trials.columns for name in PREPARATION_COLUMNS):
        raise AnalysisInputError(
            "this trials table was framed or calibrated but carries no record of it "
            "(DataFrame.attrs was cleared): prepare the table as read (load_run(...).raw_trials)"
            " instead, so that nothing is framed or calibrated twice"
        )
    mode = _check_prior("auto" if prior is None else prior)
    clip = check_bound(BAYES_CLIP if bayes_clip is None else bayes_clip)
    raw = validate_trials(trials)
    raw.attrs = {}
    # The stage-1 answers (accuracy, calibration) come from the unframed rows: framing moves
    # an answer-wrong trial's "initial choice" to the displayed, wrong, answer.
    calls = complete_stage1(stage1, raw)
    fitted = temperatures(calls)
    chosen = chosen_temperatures(fitted, mode)
    data = with_bayes(apply_calibration(frame_on_displayed(raw), chosen), clip)
    preparation = Preparation(prior=mode, bayes_clip=clip, applied=dict(chosen))
    data.attrs = {PREPARED: preparation}
    return Prepared(trials=data, stage1=calls, temperatures=fitted, preparation=preparation)


def _reuse(
    trials: pd.DataFrame,
    done: Preparation,
    stage1: pd.DataFrame | None,
    prior: Prior | None,
    bayes_clip: float | None,
) -> Prepared:
    wanted = Preparation(
        prior=done.prior if prior is None else _check_prior(prior),
        bayes_clip=done.bayes_clip if bayes_clip is None else check_bound(bayes_clip),
    )
    if (wanted.prior, wanted.bayes_clip) != (done.prior, done.bayes_clip):
        raise AnalysisInputError(
            f"these trials were prepared with prior={done.prior!r}, "
            f"bayes_clip={done.bayes_clip:g}; to use prior={wanted.prior!r}, "
            f"bayes_clip={wanted.bayes_clip:g}, prepare the table as read "
            "(load_run(RUN, prior=..., bayes_clip=...), or prepare_trials(run.raw_trials, "
            "run.stage1, ...))"
        )
    calls = complete_stage1(stage1, stage1_view(trials))
    fitted = temperatures(calls)
    present = set(model_ids(trials))
    chosen = {m: t for m, t in chosen_temperatures(fitted, done.prior).items() if m in present}
    applied = {m: t for m, t in done.applied.items() if m in present}
    if not _same_temperatures(chosen, applied):
        raise AnalysisInputError(
            "these trials were prepared with other stage-1 calls than the ones given "
            f"(temperatures applied {applied or 'none'}, these calls give {chosen or 'none'}):"
            " pass the stage-1 calls they were prepared with (run.stage1)"
        )
    return Prepared(trials=trials, stage1=calls, temperatures=fitted, preparation=done)


def refuse_as_read(trials: pd.DataFrame) -> None:
    """Raise `AnalysisInputError` if `trials` is a run's table as read (see the module doc)."""
    source = trials.attrs.get(AS_READ)
    if source is not None and not is_prepared(trials):
        raise AnalysisInputError(
            f"these trials are {source} as read, neither framed nor calibrated: measures take "
            "load_run(...).trials (prepared), or prepare_trials(run.raw_trials, run.stage1)"
            ".trials"
        )


def ensure_prepared(trials: pd.DataFrame) -> pd.DataFrame:
    """`trials` ready for a measure (the module doc says which tables pass, which are
    refused and which are prepared here)."""
    if is_prepared(trials):
        return trials
    refuse_as_read(trials)
    if not _has_trial_contract(trials):
        return _prepare_lean(trials)
    return prepare_trials(trials).trials


def answered(trials: pd.DataFrame) -> pd.DataFrame:
    """The stage-2 trials that have a final choice (a failed call has none), prepared
    (`ensure_prepared`): every measure built on it (the CoM regression, the
    switching curves) reads framed, calibrated rows, and refuses a run's table as read."""
    rows = ensure_prepared(trials)
    choice = rows["final_choice"]
    return rows.loc[choice.notna() & choice.astype(str).str.len().gt(0)]


def at_bayes_clip(trials: pd.DataFrame, bayes_clip: float) -> pd.DataFrame:
    """A prepared table with its Bayes baseline recomputed at another clip bound (framing and
    calibration as they were): for the fit, which keeps the agent's bound, and for showing
    how much the clip moves a measure."""
    data = ensure_prepared(trials)
    done = preparation_of(data)
    bound = check_bound(bayes_clip)
    if done is None or done.bayes_clip == bound:
        return data
    out = with_bayes(data, bound)
    out.attrs = {PREPARED: replace(done, bayes_clip=bound)}
    return out


def _has_trial_contract(trials: pd.DataFrame) -> bool:
    return all(name in trials.columns for name in TRIAL_COLUMNS)


def _prepare_lean(trials: pd.DataFrame) -> pd.DataFrame:
    """A table with only the columns a measure reads (the power study's): no displayed answer
    to frame on and no stage-1 calls to calibrate with, so only the Bayes baseline is added
    (a table prepared by `prepare_trials` without stage-1 calls gets no temperature either)."""
    if any(name in trials.columns for name in PREPARATION_COLUMNS):
        raise AnalysisInputError(
            "this trials table was framed or calibrated but carries no record of it "
            "(DataFrame.attrs was cleared): prepare the table as read instead"
        )
    data = with_bayes(trials, BAYES_CLIP)
    data.attrs = {PREPARED: Preparation(prior="auto", bayes_clip=BAYES_CLIP)}
    return data


def measure_input(trials: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """(`ensure_prepared(trials)`, its bayes_clip): for measures that take logits."""
    data = ensure_prepared(trials)
    preparation = preparation_of(data)
    return data, preparation.bayes_clip if preparation is not None else BAYES_CLIP
