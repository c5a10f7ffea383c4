"""mindshift analysis: from a run directory to measures, fits, figures and a report.

`analyse_run(RUN_DIR)` is the entry point the CLI calls. Every other function here is a pure
function of DataFrames, usable on its own in a notebook: load a run with `load_run`, then
compute any measure on `run.trials`.
"""

from analysis.accuracy import initial_accuracy, initial_accuracy_table, stage1_from_trials
from analysis.analyse import analyse_run
from analysis.bayes import advice_evidence, advice_sign, bayes_posterior, with_bayes
from analysis.cells import cell_stats, nest
from analysis.change_of_mind import answered, com_rates
from analysis.confidence_change import confidence_change, observed_update
from analysis.errors import AnalysisInputError
from analysis.figures import (
    FIGURES,
    figure_png,
    plot_com_by_accuracy,
    plot_confidence_change,
    plot_switching,
    plot_updates,
    render_figures,
)
from analysis.fit import TERMS, UpdateFit, design_matrix, fit_by_model, fit_update_model
from analysis.load import RunData, load_run, load_stage1_calls, load_trials, read_jsonl
from analysis.logodds import CLIP_HIGH, CLIP_LOW, clip, expit, logit
from analysis.oucs import oucs
from analysis.overweighting import (
    POOLED,
    choice_support_correction,
    overweighting,
    update_table,
)
from analysis.report import render_report
from analysis.schema import ADVICE_TYPES, DISPLAYS, TRIAL_COLUMNS, validate_trials
from analysis.summary import json_ready, summarise
from analysis.tobit import TobitResult, tobit_fit

__all__ = [
    "ADVICE_TYPES",
    "CLIP_HIGH",
    "CLIP_LOW",
    "DISPLAYS",
    "FIGURES",
    "POOLED",
    "TERMS",
    "TRIAL_COLUMNS",
    "AnalysisInputError",
    "RunData",
    "TobitResult",
    "UpdateFit",
    "advice_evidence",
    "advice_sign",
    "analyse_run",
    "answered",
    "bayes_posterior",
    "cell_stats",
    "choice_support_correction",
    "clip",
    "com_rates",
    "confidence_change",
    "design_matrix",
    "expit",
    "figure_png",
    "fit_by_model",
    "fit_update_model",
    "initial_accuracy",
    "initial_accuracy_table",
    "json_ready",
    "load_run",
    "load_stage1_calls",
    "load_trials",
    "logit",
    "nest",
    "observed_update",
    "oucs",
    "overweighting",
    "plot_com_by_accuracy",
    "plot_confidence_change",
    "plot_switching",
    "plot_updates",
    "read_jsonl",
    "render_figures",
    "render_report",
    "stage1_from_trials",
    "summarise",
    "tobit_fit",
    "update_table",
    "validate_trials",
    "with_bayes",
]
