"""The report's "fitted model" section: the Bayesian beta regression when it can run, else the
Tobit update fit that always runs.

The beta regression (models A-D of docs/paradigm.md §5, PyMC) lives in its own module and needs the
optional `bayes` extra; it is slow, and pointless on a handful of trials. So it is used only
when (a) the module `analysis.beta.regression` exists and provides `report_tables`, (b) PyMC
imports, and (c) every model has at least BETA_MIN_TRIALS trials with both confidences —
otherwise the section shows the Tobit fit (`analysis.measures.fit.fit_update_model`), which recovers
the same three parameters on the log-odds scale, and says why.

The contract with the beta-regression module (kept small so the two can change
independently): `report_tables(trials: pd.DataFrame) -> list[ModelTable]` — each a titled
table, with a caption naming the function that computed it. `trials` is the analysis's
trials table (calibrated scale when calibration is applied, with `bayes_post`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pandas as pd

from mindshift.analysis.beta.install import bayes_install_command

BETA_MODULE: Final = "mindshift.analysis.beta.regression"
BETA_ENTRY: Final = "report_tables"
BETA_MIN_TRIALS: Final = 2000
"""Fewest trials with known confidences per model for the beta regression to be run: below
it the posterior is mostly prior and the Tobit fit says as much, far faster."""

FittedKind = Literal["beta", "tobit"]


@dataclass(frozen=True)
class ModelTable:
    """One table of the fitted-model section."""

    title: str
    table: pd.DataFrame
    """Shown as is (index included when it is named); numbers are formatted by the report."""
    source: str
    """The analysis function that computed it, e.g. `analysis.measures.fit.fit_update_model`."""
    note: str = ""


@dataclass(frozen=True)
class FittedModelSection:
    """What the section shows, and why this kind was chosen."""

    kind: FittedKind
    reason: str
    tables: list[ModelTable] = field(default_factory=list)


def beta_entry() -> Callable[[pd.DataFrame], list[ModelTable]] | None:
    """The beta regression's report function, or None when it (or PyMC) is not installed."""
    if importlib.util.find_spec("pymc") is None:
        return None
    try:
        module = importlib.import_module(BETA_MODULE)
    except ImportError:
        return None
    entry = getattr(module, BETA_ENTRY, None)
    return entry if callable(entry) else None


def trials_with_confidence(trials: pd.DataFrame) -> pd.Series:
    """Per model: trials whose initial and final confidences are both known."""
    known = np.isfinite(trials["initial_confidence"].to_numpy(np.float64)) & np.isfinite(
        trials["final_prob_initial"].to_numpy(np.float64)
    )
    return pd.Series(known, index=trials.index).groupby(trials["model"]).sum()


def choose_kind(
    trials: pd.DataFrame, wanted: Literal["auto", "beta", "tobit"] = "auto"
) -> tuple[FittedKind, str]:
    """Which fit the section shows and a sentence saying why."""
    if wanted == "tobit":
        return "tobit", "the Tobit update fit was asked for"
    if beta_entry() is None:
        return "tobit", (
            "the Bayesian beta regression needs the optional `bayes` extra "
            f"({bayes_install_command()}); showing the Tobit update fit instead"
        )
    counts = trials_with_confidence(trials)
    small = [str(m) for m, n in counts.items() if n < BETA_MIN_TRIALS]
    if wanted == "auto" and (small or counts.empty):
        return "tobit", (
            f"the beta regression runs when every model has at least {BETA_MIN_TRIALS:,} "
            f"trials with confidences ({', '.join(small) or 'no model'} has fewer); "
            "showing the Tobit update fit instead"
        )
    return "beta", "Bayesian beta regression (PyMC), models compared by PSIS-LOO"


def fitted_model_section(
    trials: pd.DataFrame,
    tobit: pd.DataFrame,
    wanted: Literal["auto", "beta", "tobit"] = "auto",
) -> FittedModelSection:
    """The section's content: the beta regression's tables, or the Tobit fit table `tobit`
    (`analysis.measures.fit.fit_table`), with the reason for the choice."""
    kind, reason = choose_kind(trials, wanted)
    tobit_table = ModelTable(
        title="Log-odds update model (Tobit), item-clustered errors",
        table=tobit,
        source="mindshift.analysis.measures.fit.fit_update_model",
        note="logit(q) = intercept + prior_weight·logit(c) + choice_support·[shown] "
        "+ w_same·Δ·[same] + w_opposite·Δ·[opposite] + Normal(0, noise), Δ the Bayes "
        "log-odds shift (logit(a) for same, -logit(a) for opposite advice with two options); "
        "displays shown, hidden and other; final confidences at the clip bounds are censored.",
    )
    if kind == "tobit":
        return FittedModelSection(kind, reason, [tobit_table])
    entry = beta_entry()
    assert entry is not None  # choose_kind said beta only when it exists
    return FittedModelSection(kind, reason, [*entry(trials), tobit_table])
