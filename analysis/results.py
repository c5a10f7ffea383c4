"""Every measure of a run, computed once: the one object summary.json, the figures, the report,
the terminal summary and the cross-model comparison are all rendered from.

`compute_results(trials, stage1, prior=...)` is a pure function of the two tables. Its steps,
in order: validate; frame every trial on the answer displayed as the model's own
(`analysis.framing`: the answer-wrong control); fit a temperature per model and put the
confidences on the chosen scale (`analysis.calibration`); add the Bayes posterior; then each
measure, by the function named in `Results.sources` (the report cites those names under
every number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import pandas as pd

from analysis.accuracy import complete_stage1, initial_accuracy_table
from analysis.bayes import with_bayes
from analysis.calibration import (
    Prior,
    apply_calibration,
    calibration_metrics,
    chosen_temperatures,
    reliability_table,
    temperatures,
)
from analysis.change_of_mind import com_rates
from analysis.com_regression import com_logistic
from analysis.conditions import condition_table
from analysis.confidence_change import confidence_change
from analysis.design import design_table
from analysis.fit import UpdateFit, fit_by_model, fit_table
from analysis.fitted_model import FittedModelSection, fitted_model_section
from analysis.framing import frame_on_displayed
from analysis.oucs import oucs
from analysis.overweighting import choice_support_correction, choice_support_test, overweighting
from analysis.schema import model_ids, validate_trials
from analysis.sequences import sequence_table
from analysis.switching import binned_switching, switching_curves

BY_CELL: Final = ("display", "advice")
BY_ACCURACY: Final = ("display", "advice", "accuracy")

SOURCES: Final[dict[str, str]] = {
    "design": "analysis.design.design_table",
    "accuracy": "analysis.accuracy.initial_accuracy_table",
    "temperatures": "analysis.calibration.temperatures",
    "calibration": "analysis.calibration.calibration_metrics",
    "reliability": "analysis.calibration.reliability_table",
    "com": "analysis.change_of_mind.com_rates(by=display)",
    "com_advice": "analysis.change_of_mind.com_rates(by=display, advice)",
    "com_accuracy": "analysis.change_of_mind.com_rates(by=display, advice, accuracy)",
    "com_regression": "analysis.com_regression.com_logistic",
    "switching": "analysis.switching.switching_curves",
    "switching_bins": "analysis.switching.binned_switching",
    "change": "analysis.confidence_change.confidence_change(by=display, advice)",
    "change_accuracy": "analysis.confidence_change.confidence_change(by=display, advice, accuracy)",
    "choice_support": "analysis.overweighting.choice_support_test",
    "oucs": "analysis.oucs.oucs(by=display, advice)",
    "oucs_accuracy": "analysis.oucs.oucs(by=display, advice, accuracy)",
    "overweighting": "analysis.overweighting.overweighting",
    "fit": "analysis.fit.fit_update_model",
    "by_condition": "analysis.conditions.condition_table",
    "sequences": "analysis.sequences.sequence_table",
}
"""The analysis function behind each table of `Results` (cited by the report)."""


@dataclass(frozen=True)
class Results:
    """All measures of one analysis; every DataFrame is tidy, with a `model` column."""

    trials: pd.DataFrame
    """The validated trials on the chosen confidence scale, with `bayes_post` (and the
    read-out confidences in `*_raw` columns)."""
    stage1: pd.DataFrame
    prior: Prior
    chosen: dict[str, float]
    """The temperature applied per model (models absent: raw confidences)."""
    design: pd.DataFrame
    accuracy: pd.DataFrame
    temperatures: pd.DataFrame
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    com: pd.DataFrame
    com_advice: pd.DataFrame
    com_accuracy: pd.DataFrame
    com_regression: pd.DataFrame
    switching: pd.DataFrame
    switching_bins: pd.DataFrame
    change: pd.DataFrame
    change_accuracy: pd.DataFrame
    choice_support: pd.DataFrame
    corrections: pd.Series
    oucs: pd.DataFrame
    oucs_accuracy: pd.DataFrame
    overweighting: pd.DataFrame
    fits: dict[str, UpdateFit]
    fit: pd.DataFrame
    fitted_model: FittedModelSection
    by_condition: pd.DataFrame
    """CoM rate, confidence change and OUCS per condition: any paradigm's headline."""
    sequences: pd.DataFrame
    """Sequences of advisors against the Bayes baseline (empty unless multi-advice)."""
    sources: dict[str, str] = field(default_factory=lambda: dict(SOURCES))

    @property
    def models(self) -> list[str]:
        """Every model id, sorted."""
        return sorted(set(model_ids(self.trials)) | {str(m) for m in self.accuracy.index})


@dataclass(frozen=True)
class Prepared:
    """The trials ready for every measure, and what it took to get them there."""

    raw: pd.DataFrame
    """Validated, as read (unframed, read-out confidences)."""
    trials: pd.DataFrame
    """Framed, on the chosen confidence scale, with `bayes_shift` and `bayes_post`."""
    stage1: pd.DataFrame
    temperatures: pd.DataFrame
    chosen: dict[str, float]


def prepare_trials(
    trials: pd.DataFrame, stage1: pd.DataFrame | None = None, *, prior: Prior = "auto"
) -> Prepared:
    """Validate, frame (`analysis.framing`), calibrate and add the Bayes baseline: the steps
    before any measure, shared by `compute_results` and `analysis.transfer`."""
    raw = validate_trials(trials)
    # The stage-1 answers (accuracy, calibration) come from the unframed rows: framing moves
    # an answer-wrong trial's "initial choice" to the displayed, wrong, answer.
    calls = complete_stage1(stage1, raw)
    fitted_temperatures = temperatures(calls)
    chosen = chosen_temperatures(fitted_temperatures, prior)
    data = with_bayes(apply_calibration(frame_on_displayed(raw), chosen))
    return Prepared(raw, data, calls, fitted_temperatures, chosen)


def compute_results(
    trials: pd.DataFrame,
    stage1: pd.DataFrame | None = None,
    *,
    prior: Prior = "auto",
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
) -> Results:
    """Every measure of a trials table (and the run's stage-1 calls), on the `prior` scale.

    Without `stage1` (a run with no calls.jsonl) the stage-1 answers recorded in the trials
    stand in (`complete_stage1`): initial accuracy and the in-sample calibration fallback
    still work.
    """
    prepared = prepare_trials(trials, stage1, prior=prior)
    raw, data, calls = prepared.raw, prepared.trials, prepared.stage1
    fitted_temperatures, chosen = prepared.temperatures, prepared.chosen
    fits = fit_by_model(data)
    fit = fit_table(fits)
    return Results(
        trials=data,
        stage1=calls,
        prior=prior,
        chosen=chosen,
        design=design_table(data, calls),
        accuracy=initial_accuracy_table(raw, stage1),
        temperatures=fitted_temperatures,
        calibration=calibration_metrics(calls, fitted_temperatures),
        reliability=reliability_table(calls, fitted_temperatures),
        com=com_rates(data, ("display",)),
        com_advice=com_rates(data, BY_CELL),
        com_accuracy=com_rates(data, BY_ACCURACY),
        com_regression=com_logistic(data),
        switching=switching_curves(data),
        switching_bins=binned_switching(data),
        change=confidence_change(data, BY_CELL),
        change_accuracy=confidence_change(data, BY_ACCURACY),
        choice_support=choice_support_test(data),
        corrections=choice_support_correction(data),
        oucs=oucs(data, BY_CELL),
        oucs_accuracy=oucs(data, BY_ACCURACY),
        overweighting=overweighting(data),
        fits=fits,
        fit=fit,
        fitted_model=fitted_model_section(data, fit, fitted_model),
        by_condition=condition_table(data),
        sequences=sequence_table(data),
    )
