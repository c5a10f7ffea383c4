"""Every measure of a run, computed once: the one object summary.json, the figures, the report,
the terminal summary and the cross-model comparison are all rendered from.

`compute_results(trials, stage1, prior=..., bayes_clip=...)` is a pure function of the two
tables. Its steps, in order: prepare the trials (`analysis.data.prepare.prepare_trials`:
validate; frame every trial on the answer displayed as the model's own,
`analysis.data.framing`; fit a temperature per model and put the confidences on the chosen
scale, `analysis.data.temperature`; add the Bayes posterior, `analysis.engines.bayes`) unless
they come prepared (`load_run(...).trials`); fit the Tobit update model
(`analysis.measures.fit`), which every analysis reports; then every registered measure
(`analysis.measures.registry`), each by the function named in `Results.sources` (the report
cites those names under every number). Every measure is a public function of the prepared
table, so `oucs(load_run(RUN).trials)` is the report's OUCS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import pandas as pd

from mindshift.analysis.beta.fitted_model import FittedModelSection, fitted_model_section
from mindshift.analysis.data.load import RunData
from mindshift.analysis.data.prepare import Prepared, at_bayes_clip, prepare_trials
from mindshift.analysis.data.schema import model_ids
from mindshift.analysis.data.temperature import Prior
from mindshift.analysis.engines.logodds import BAYES_CLIP
from mindshift.analysis.measures.fit import UpdateFit, fit_by_model, fit_table, fit_update_model
from mindshift.analysis.measures.registry import Measure, MeasureInput, cited, measures

FIT: Final = "fit"
"""The key of the update fit's table (`tables/fit.csv`, `Results.sources`; reserved in the
registry)."""


@dataclass(frozen=True)
class Results:
    """All measures of one analysis; every DataFrame is tidy, with a `model` column."""

    trials: pd.DataFrame
    """The prepared trials (`analysis.data.prepare`): framed, on the chosen confidence scale,
    with `bayes_post` (and the read-out confidences in `*_raw` columns)."""
    stage1: pd.DataFrame
    prior: Prior
    chosen: dict[str, float]
    """The temperature applied per model (models absent: raw confidences)."""
    bayes_clip: float
    """The Bayes baseline clipped probabilities to [bayes_clip, 1 - bayes_clip]."""
    measures: tuple[Measure, ...]
    """The registered measures computed, in the registry's order."""
    tables: Mapping[str, pd.DataFrame]
    """Each measure's table, by its key."""
    fits: dict[str, UpdateFit]
    """The Tobit update fit per model (`analysis.measures.fit`)."""
    fit: pd.DataFrame
    """`fits` as a table (`fit_table`)."""
    fitted_model: FittedModelSection
    truth: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per model, the parameters it was simulated with, where the run's config states them
    (`sim:bayes`): what the report shows the estimates against."""

    def table(self, key: str) -> pd.DataFrame:
        """The table of the measure `key` (the update fit's: "fit")."""
        if key == FIT:
            return self.fit
        try:
            return self.tables[key]
        except KeyError:
            raise KeyError(f"these results have no measure {key!r}") from None

    def measure(self, key: str) -> Measure:
        """The measure `key`, as it was computed."""
        for measure in self.measures:
            if measure.key == key:
                return measure
        raise KeyError(f"these results have no measure {key!r}")

    @property
    def sources(self) -> dict[str, str]:
        """The function behind each table, by key, as the report cites it."""
        return {m.key: m.source for m in self.measures} | {FIT: cited(fit_update_model)}

    @property
    def models(self) -> list[str]:
        """Every model id, sorted."""
        return sorted(set(model_ids(self.trials)) | {str(m) for m in self.accuracy.index})

    # The built-in measures' tables by name, for notebooks and the report's own sections.

    @property
    def design(self) -> pd.DataFrame:
        return self.table("design")

    @property
    def accuracy(self) -> pd.DataFrame:
        """Indexed by model: accuracy_initial, n_initial_calls, source."""
        return self.table("accuracy").set_index("model")

    @property
    def temperatures(self) -> pd.DataFrame:
        return self.table("calibration_temperature")

    @property
    def calibration(self) -> pd.DataFrame:
        return self.table("calibration_metrics")

    @property
    def reliability(self) -> pd.DataFrame:
        return self.table("reliability")

    @property
    def com(self) -> pd.DataFrame:
        return self.table("com_rate")

    @property
    def com_advice(self) -> pd.DataFrame:
        return self.table("com_rate_by_advice")

    @property
    def com_accuracy(self) -> pd.DataFrame:
        return self.table("com_rate_by_accuracy")

    @property
    def com_regression(self) -> pd.DataFrame:
        return self.table("com_regression")

    @property
    def switching(self) -> pd.DataFrame:
        return self.table("switching")

    @property
    def switching_bins(self) -> pd.DataFrame:
        return self.table("switching_bins")

    @property
    def change(self) -> pd.DataFrame:
        return self.table("confidence_change")

    @property
    def change_accuracy(self) -> pd.DataFrame:
        return self.table("confidence_change_by_accuracy")

    @property
    def choice_support(self) -> pd.DataFrame:
        return self.table("choice_support")

    @property
    def corrections(self) -> pd.Series:
        """Per model: the choice-support correction on the probability scale."""
        return self._correction("probability")

    @property
    def corrections_logodds(self) -> pd.Series:
        """Per model: the choice-support correction on the log-odds scale."""
        return self._correction("logodds")

    def _correction(self, scale: str) -> pd.Series:
        table = self.table("choice_support_correction")
        index = pd.Index(table["model"], name="model")
        return pd.Series(table[scale].to_numpy(), index=index, name="correction")

    @property
    def oucs(self) -> pd.DataFrame:
        return self.table("oucs")

    @property
    def oucs_accuracy(self) -> pd.DataFrame:
        return self.table("oucs_by_accuracy")

    @property
    def overweighting(self) -> pd.DataFrame:
        """The paper's version (probability scale); its `hidden` rows are the journal's."""
        return self.table("overweighting")

    @property
    def overweighting_logodds(self) -> pd.DataFrame:
        return self.table("overweighting_logodds")

    @property
    def clip_sensitivity(self) -> pd.DataFrame:
        """The cells the clip bites (a = 100 %) under the analysis's clip and exact Bayes."""
        return self.table("clip_sensitivity")

    @property
    def by_condition(self) -> pd.DataFrame:
        """CoM rate, confidence change and OUCS per condition: any paradigm's headline."""
        return self.table("by_condition")

    @property
    def sequences(self) -> pd.DataFrame:
        """Sequences of advisors against the Bayes baseline (empty unless multi-advice)."""
        return self.table("sequences")


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
    data = prepared.trials
    # The update fit keeps the simulated agent's clip bounds whatever the Bayes baseline
    # uses: they are its censoring points, and exact Bayes has infinite shifts at a = 1.0.
    fit_data = at_bayes_clip(data, BAYES_CLIP)
    fits = fit_by_model(fit_data)
    fit = fit_table(fits)
    present = set(model_ids(data))
    computed = measures()
    given = MeasureInput(prepared=prepared, stage1=stage1)
    return Results(
        trials=data,
        stage1=prepared.stage1,
        prior=prepared.prior,
        chosen=prepared.chosen,
        bayes_clip=prepared.bayes_clip,
        measures=computed,
        tables={measure.key: measure.table_of(given) for measure in computed},
        fits=fits,
        fit=fit,
        fitted_model=fitted_model_section(fit_data, fit, fitted_model),
        truth={
            model: dict(values)
            for model, values in (truth or {}).items()
            if model in present and all(math.isfinite(v) for v in values.values())
        },
    )
