"""mindshift analysis: from a run directory to measures, fits, figures and a report.

`analyse_run(RUN_DIR)` is the entry point the CLI calls, `compare_runs([RUN_DIR, ...], OUT)`
pools several runs, `transfer_runs(TRAIN_DIR, TEST_DIR)` fits on one domain and predicts
another. `compute_results(trials, stage1)` computes every measure at once; each measure is
also a pure function of DataFrames, usable on its own in a notebook, with the report's
answer:

    run = load_run("runs/x")           # prior="auto", bayes_clip=0.01: analyse's defaults
    oucs(run.trials)                   # = summary.json's oucs
    overweighting(run.trials)          # = summary.json's overweighting (+ detail)

`run.trials` is prepared (`analysis.data.prepare`: framed on the displayed answer, calibrated on
the `prior` scale, with the Bayes posterior); `run.raw_trials` is the table as read, which the
measures refuse. A table built by hand is prepared by each measure as `compute_results`
prepares it.

The package is built in layers, each importing only those below it (tests/analysis/
test_layers.py): `errors`; `engines` (numerics); `data` (reading and preparing a run); `beta`
(the beta regression); `measures` (one module per measure, each declared in the measure
registry, `analysis.measures.registry`, and `Results`); `render` (summary.json, summary.md,
tables, figures, report.html); and `analyse` and `compare` on top. Everything public is
re-exported here.
"""

from mindshift.analysis.analyse import analyse_run
from mindshift.analysis.beta.fitted_model import FittedModelSection, ModelTable
from mindshift.analysis.beta.regression import (
    BayesExtraMissing,
    BetaFit,
    compare_models,
    fit_beta_model,
)
from mindshift.analysis.compare import compare_runs
from mindshift.analysis.data.framing import frame_on_displayed
from mindshift.analysis.data.load import RunData, load_run, load_stage1_calls, load_trials
from mindshift.analysis.data.prepare import (
    Preparation,
    Prepared,
    answered,
    at_bayes_clip,
    ensure_prepared,
    is_prepared,
    preparation_of,
    prepare_trials,
)
from mindshift.analysis.data.schema import ADVICE_TYPES, DISPLAYS, TRIAL_COLUMNS, validate_trials
from mindshift.analysis.data.stage1 import stage1_from_trials
from mindshift.analysis.data.temperature import (
    PRIOR_MODES,
    Prior,
    apply_calibration,
    chosen_temperatures,
    fit_temperature,
    scale_binary,
    scale_probs,
    stage1_matrix,
    temperatures,
)
from mindshift.analysis.data.turns import last_turn
from mindshift.analysis.engines.bayes import (
    advice_evidence,
    advice_sign,
    advised_share,
    bayes_posterior,
    bayes_shift,
    sequence_posterior,
    with_bayes,
)
from mindshift.analysis.engines.clustered import clustered_mean_se, sandwich
from mindshift.analysis.engines.logistic import LogisticResult, logistic_fit
from mindshift.analysis.engines.logodds import (
    BAYES_CLIP,
    CLIP_HIGH,
    CLIP_LOW,
    check_bound,
    clip,
    expit,
    logit,
)
from mindshift.analysis.engines.tobit import TobitResult, tobit_fit
from mindshift.analysis.errors import AnalysisInputError
from mindshift.analysis.measures.accuracy import initial_accuracy, initial_accuracy_table
from mindshift.analysis.measures.calibration import (
    auroc,
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    reliability_bins,
    reliability_table,
)
from mindshift.analysis.measures.cells import cell_stats, nest
from mindshift.analysis.measures.change_of_mind import com_rates
from mindshift.analysis.measures.choice_support import (
    choice_support_correction,
    choice_support_test,
    display_corrections,
    logodds_update,
)
from mindshift.analysis.measures.clip_sensitivity import clip_sensitivity
from mindshift.analysis.measures.com_regression import (
    DISPLAY_TERM,
    com_logistic,
    display_coefficient,
)
from mindshift.analysis.measures.conditions import condition_table
from mindshift.analysis.measures.confidence_change import confidence_change, observed_update
from mindshift.analysis.measures.design import design_table
from mindshift.analysis.measures.fit import (
    TERMS,
    UpdateFit,
    design_matrix,
    fit_by_model,
    fit_table,
    fit_update_model,
)
from mindshift.analysis.measures.oucs import oucs, oucs_paper_table
from mindshift.analysis.measures.overweighting import (
    POOLED,
    overweighting,
    overweighting_logodds,
    update_table,
)
from mindshift.analysis.measures.results import (
    Results,
    compute_results,
    results_for_run,
    results_from_prepared,
)
from mindshift.analysis.measures.sequences import sequence_table
from mindshift.analysis.measures.switching import binned_switching, switching_curves
from mindshift.analysis.measures.transfer import (
    UpdateTransfer,
    predicted_confidence,
    transfer_runs,
    transfer_table,
    transfer_update_fit,
)
from mindshift.analysis.measures.turns import turn_table
from mindshift.analysis.render.figures import (
    FIGURES,
    figure_png,
    plot_com_by_accuracy,
    plot_confidence_change,
    plot_estimates,
    plot_oucs,
    plot_reliability,
    plot_switching,
    plot_turns,
    plot_updates,
    render_figures,
)
from mindshift.analysis.render.report import render_report
from mindshift.analysis.render.summary import json_ready, summarise, summary_document
from mindshift.analysis.render.summary_md import summary_markdown
from mindshift.analysis.render.tables import measure_tables

__all__ = [
    "ADVICE_TYPES",
    "BAYES_CLIP",
    "CLIP_HIGH",
    "CLIP_LOW",
    "DISPLAYS",
    "DISPLAY_TERM",
    "FIGURES",
    "POOLED",
    "PRIOR_MODES",
    "TERMS",
    "TRIAL_COLUMNS",
    "AnalysisInputError",
    "BayesExtraMissing",
    "BetaFit",
    "FittedModelSection",
    "LogisticResult",
    "ModelTable",
    "Preparation",
    "Prepared",
    "Prior",
    "Results",
    "RunData",
    "TobitResult",
    "UpdateFit",
    "UpdateTransfer",
    "advice_evidence",
    "advice_sign",
    "advised_share",
    "analyse_run",
    "answered",
    "apply_calibration",
    "at_bayes_clip",
    "auroc",
    "bayes_posterior",
    "bayes_shift",
    "binned_switching",
    "brier_score",
    "calibration_metrics",
    "cell_stats",
    "check_bound",
    "choice_support_correction",
    "choice_support_test",
    "chosen_temperatures",
    "clip",
    "clip_sensitivity",
    "clustered_mean_se",
    "com_logistic",
    "com_rates",
    "compare_models",
    "compare_runs",
    "compute_results",
    "condition_table",
    "confidence_change",
    "design_matrix",
    "design_table",
    "display_coefficient",
    "display_corrections",
    "ensure_prepared",
    "expected_calibration_error",
    "expit",
    "figure_png",
    "fit_beta_model",
    "fit_by_model",
    "fit_table",
    "fit_temperature",
    "fit_update_model",
    "frame_on_displayed",
    "initial_accuracy",
    "initial_accuracy_table",
    "is_prepared",
    "json_ready",
    "last_turn",
    "load_run",
    "load_stage1_calls",
    "load_trials",
    "logistic_fit",
    "logit",
    "logodds_update",
    "measure_tables",
    "nest",
    "observed_update",
    "oucs",
    "oucs_paper_table",
    "overweighting",
    "overweighting_logodds",
    "plot_com_by_accuracy",
    "plot_confidence_change",
    "plot_estimates",
    "plot_oucs",
    "plot_reliability",
    "plot_switching",
    "plot_turns",
    "plot_updates",
    "predicted_confidence",
    "preparation_of",
    "prepare_trials",
    "reliability_bins",
    "reliability_table",
    "render_figures",
    "render_report",
    "results_for_run",
    "results_from_prepared",
    "sandwich",
    "scale_binary",
    "scale_probs",
    "sequence_posterior",
    "sequence_table",
    "stage1_from_trials",
    "stage1_matrix",
    "summarise",
    "summary_document",
    "summary_markdown",
    "switching_curves",
    "temperatures",
    "tobit_fit",
    "transfer_runs",
    "transfer_table",
    "transfer_update_fit",
    "turn_table",
    "update_table",
    "validate_trials",
    "with_bayes",
]
