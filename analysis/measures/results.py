"""Every measure of a run, computed once: the one object summary.json, the figures, the report,
the terminal summary and the cross-model comparison are all rendered from.

`compute_results(trials, stage1, prior=..., bayes_clip=...)` is a pure function of the two
tables. Its steps, in order: prepare the trials (`analysis.data.prepare.prepare_trials`:
validate; frame every trial on the answer displayed as the model's own,
`analysis.data.framing`; fit a temperature per model and put the confidences on the chosen
scale, `analysis.data.temperature`; add the Bayes posterior, `analysis.engines.bayes`) unless
they come prepared (`load_run(...).trials`); then each measure, by the function named in
`Results.sources` (the report cites those names under every number). Every measure is a
public function of the prepared table, so `oucs(load_run(RUN).trials)` is the report's OUCS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import pandas as pd

from analysis.beta.fitted_model import FittedModelSection, fitted_model_section
from analysis.data.load import RunData
from analysis.data.prepare import Prepared, at_bayes_clip, prepare_trials
from analysis.data.schema import model_ids
from analysis.data.temperature import Prior
from analysis.engines.logodds import BAYES_CLIP
from analysis.measures.accuracy import initial_accuracy_table
from analysis.measures.calibration import calibration_metrics, reliability_table
from analysis.measures.change_of_mind import com_rates
from analysis.measures.choice_support import choice_support_correction, choice_support_test
from analysis.measures.clip_sensitivity import clip_sensitivity
from analysis.measures.com_regression import com_logistic
from analysis.measures.conditions import condition_table
from analysis.measures.confidence_change import confidence_change
from analysis.measures.design import design_table
from analysis.measures.fit import UpdateFit, fit_by_model, fit_table
from analysis.measures.oucs import oucs
from analysis.measures.overweighting import overweighting, overweighting_logodds
from analysis.measures.sequences import sequence_table
from analysis.measures.switching import binned_switching, switching_curves

BY_CELL: Final = ("display", "advice")
BY_ACCURACY: Final = ("display", "advice", "accuracy")

SOURCES: Final[dict[str, str]] = {
    "design": "analysis.measures.design.design_table",
    "accuracy": "analysis.measures.accuracy.initial_accuracy_table",
    "temperatures": "analysis.data.temperature.temperatures",
    "calibration": "analysis.measures.calibration.calibration_metrics",
    "reliability": "analysis.measures.calibration.reliability_table",
    "com": "analysis.measures.change_of_mind.com_rates(by=display)",
    "com_advice": "analysis.measures.change_of_mind.com_rates(by=display, advice)",
    "com_accuracy": "analysis.measures.change_of_mind.com_rates(by=display, advice, accuracy)",
    "com_regression": "analysis.measures.com_regression.com_logistic",
    "switching": "analysis.measures.switching.switching_curves",
    "switching_bins": "analysis.measures.switching.binned_switching",
    "change": "analysis.measures.confidence_change.confidence_change(by=display, advice)",
    "change_accuracy": (
        "analysis.measures.confidence_change.confidence_change(by=display, advice, accuracy)"
    ),
    "choice_support": "analysis.measures.choice_support.choice_support_test",
    "oucs": "analysis.measures.oucs.oucs(by=display, advice)",
    "oucs_accuracy": "analysis.measures.oucs.oucs(by=display, advice, accuracy)",
    "overweighting": "analysis.measures.overweighting.overweighting",
    "overweighting_logodds": "analysis.measures.overweighting.overweighting_logodds",
    "clip_sensitivity": "analysis.measures.clip_sensitivity.clip_sensitivity",
    "fit": "analysis.measures.fit.fit_update_model",
    "by_condition": "analysis.measures.conditions.condition_table",
    "sequences": "analysis.measures.sequences.sequence_table",
}
"""The analysis function behind each table of `Results` (cited by the report)."""


@dataclass(frozen=True)
class Results:
    """All measures of one analysis; every DataFrame is tidy, with a `model` column."""

    trials: pd.DataFrame
    """The prepared trials (`analysis.data.prepare`): framed, on the chosen confidence scale, with
    `bayes_post` (and the read-out confidences in `*_raw` columns)."""
    stage1: pd.DataFrame
    prior: Prior
    chosen: dict[str, float]
    """The temperature applied per model (models absent: raw confidences)."""
    bayes_clip: float
    """The Bayes baseline clipped probabilities to [bayes_clip, 1 - bayes_clip]."""
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
    """Per model: the choice-support correction on the probability scale."""
    corrections_logodds: pd.Series
    """Per model: the choice-support correction on the log-odds scale."""
    oucs: pd.DataFrame
    oucs_accuracy: pd.DataFrame
    overweighting: pd.DataFrame
    """The paper's version (probability scale); its `hidden` rows are the journal's."""
    overweighting_logodds: pd.DataFrame
    clip_sensitivity: pd.DataFrame
    """The cells the clip bites (a = 100 %) under the analysis's clip and exact Bayes."""
    fits: dict[str, UpdateFit]
    fit: pd.DataFrame
    fitted_model: FittedModelSection
    by_condition: pd.DataFrame
    """CoM rate, confidence change and OUCS per condition: any paradigm's headline."""
    sequences: pd.DataFrame
    """Sequences of advisors against the Bayes baseline (empty unless multi-advice)."""
    truth: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per model, the parameters it was simulated with, where the run's config states them
    (`sim:bayes`): what the report shows the estimates against."""
    sources: dict[str, str] = field(default_factory=lambda: dict(SOURCES))

    @property
    def models(self) -> list[str]:
        """Every model id, sorted."""
        return sorted(set(model_ids(self.trials)) | {str(m) for m in self.accuracy.index})


def compute_results(
    trials: pd.DataFrame,
    stage1: pd.DataFrame | None = None,
    *,
    prior: Prior | None = None,
    bayes_clip: float | None = None,
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
) -> Results:
    """Every measure of a trials table (and the run's stage-1 calls), on the `prior` scale
    with the Bayes baseline clipped at `bayes_clip`.

    `trials` may be as read (it is prepared here: prior "auto" and bayes_clip 0.01 unless
    given) or prepared (`load_run(...).trials`: used as it is, settings None meaning its
    own; see `analysis.data.prepare.prepare_trials`). Without `stage1` (a run with no
    calls.jsonl) the stage-1 answers recorded in the trials stand in (`complete_stage1`):
    initial accuracy and the in-sample calibration fallback still work.
    """
    prepared = prepare_trials(trials, stage1, prior=prior, bayes_clip=bayes_clip)
    return results_from_prepared(prepared, stage1, fitted_model=fitted_model)


def results_for_run(
    run: RunData, *, fitted_model: Literal["auto", "beta", "tobit"] = "auto"
) -> Results:
    """Every measure of a loaded run, on the settings it was loaded with, against the
    parameters its config states for simulated models (`RunData.known_parameters`)."""
    return results_from_prepared(
        run.prepared, run.stage1, fitted_model=fitted_model, truth=run.known_parameters
    )


def results_from_prepared(
    prepared: Prepared,
    stage1: pd.DataFrame | None,
    *,
    fitted_model: Literal["auto", "beta", "tobit"] = "auto",
    truth: Mapping[str, Mapping[str, float]] | None = None,
) -> Results:
    """Every measure of prepared trials (`stage1`: the stage-1 calls as read, or None)."""
    data, calls = prepared.trials, prepared.stage1
    # The update fit keeps the simulated agent's clip bounds whatever the Bayes baseline
    # uses: they are its censoring points, and exact Bayes has infinite shifts at a = 1.0.
    fit_data = at_bayes_clip(data, BAYES_CLIP)
    fits = fit_by_model(fit_data)
    fit = fit_table(fits)
    present = set(model_ids(data))
    return Results(
        trials=data,
        stage1=calls,
        prior=prepared.prior,
        chosen=prepared.chosen,
        bayes_clip=prepared.bayes_clip,
        design=design_table(data, calls),
        accuracy=initial_accuracy_table(prepared.stage1_trials, stage1),
        temperatures=prepared.temperatures,
        calibration=calibration_metrics(calls, prepared.temperatures),
        reliability=reliability_table(calls, prepared.temperatures),
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
        corrections_logodds=choice_support_correction(data, "logodds"),
        oucs=oucs(data, BY_CELL),
        oucs_accuracy=oucs(data, BY_ACCURACY),
        overweighting=overweighting(data),
        overweighting_logodds=overweighting_logodds(data),
        clip_sensitivity=clip_sensitivity(data),
        fits=fits,
        fit=fit,
        fitted_model=fitted_model_section(fit_data, fit, fitted_model),
        by_condition=condition_table(data),
        sequences=sequence_table(data),
        truth={
            model: dict(values)
            for model, values in (truth or {}).items()
            if model in present and all(math.isfinite(v) for v in values.values())
        },
    )
