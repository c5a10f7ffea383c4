"""The paper's fitted model: Bayesian beta regression of the final confidence, variants A-D.

Response: q = `final_prob_initial`, the final probability of the initially chosen option,
clipped to [0.01, 0.99] (`analysis.engines.logodds.clip`); trials at a clip bound are censored there
(`analysis.beta.likelihood`). Likelihood and link:

    q ~ Beta(mu * kappa, (1 - mu) * kappa),   logit(mu) = eta = design @ coef

so mu is the mean final confidence and kappa the precision (variance mu (1 - mu) / (1 + kappa)).

Coding of the design terms (the log-odds update model of `analysis.measures.fit`, on the mean):
- intercept: 1
- prior_weight: logit(clip(c)), c = `initial_confidence` (the prior)
- choice_support: [display = shown] (`hidden` and `other` are 0)
- w_advice: s * logit(clip(a)), s = +1 same, -1 opposite, 0 neutral (one advice weight)
- w_same: logit(clip(a)) * [advice = same]
- w_opposite: -logit(clip(a)) * [advice = opposite] (signed so that, like w_same, a weight of 1
  is the Bayesian observer's and > 1 is overweighting)
The Bayesian observer is intercept 0, prior_weight 1, choice_support 0, w = 1, where
logit(mu) equals the Bayes posterior's log-odds. The simulated agent's parameters are on the
same scale, but the agent's noise is Gaussian on the log-odds, not beta: its mean confidence
expit(eta) is approached but not hit exactly (docs/beta_regression.md quantifies the gap).

Variants (docs/paradigm.md §5, whose labels name what each lacks relative to D):
- A "prior only": intercept, prior_weight
- B "no display flag": A + w_same + w_opposite
- C "one advice weight": A + choice_support + w_advice
- D "separate same/opposite weights + shown flag": A + choice_support + w_same + w_opposite
A is nested in B, C and D; B and C are each nested in D. `BetaModelSpec` builds any other
combination (for example the chain reading B' = A + w_advice).

Priors (weakly informative, on the log-odds scale the predictors share):
coef ~ Normal(0, 2.5) for every term, which leaves any plausible weight (overweighting up to
about 5x within two sd) to the data without pulling towards the Bayesian values;
kappa ~ LogNormal(3, 2): median 20, 95 % between 0.4 and 1,000.

Sampling: PyMC NUTS, four chains, a dense metric from the Laplace approximation
(`analysis.beta.sampler`). PyMC and ArviZ are the optional `bayes` extra: this module imports
without them and raises `BayesExtraMissing` when a fit is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from mindshift.analysis.beta.install import bayes_install_command
from mindshift.analysis.data.prepare import at_bayes_clip, is_prepared, refuse_as_read
from mindshift.analysis.data.schema import MAIN_DISPLAYS
from mindshift.analysis.engines.bayes import ADVICE_SIGN, with_bayes
from mindshift.analysis.engines.logodds import BAYES_CLIP, CLIP_HIGH, CLIP_LOW, FloatArray, logit
from mindshift.analysis.errors import AnalysisInputError

AdviceCoding = Literal["none", "pooled", "split"]

TERM_ORDER: Final = (
    "intercept",
    "prior_weight",
    "choice_support",
    "w_advice",
    "w_same",
    "w_opposite",
)
"""Every design term, in the order fits and tables list them."""

KAPPA: Final = "kappa"
"""The precision parameter's name in summaries."""


class BayesExtraMissing(ImportError):
    """PyMC or ArviZ is not installed: the beta regression needs the `bayes` extra."""


def require_bayes() -> None:
    """Raise `BayesExtraMissing` unless PyMC and ArviZ can be imported."""
    missing = [name for name in ("pymc", "arviz") if importlib.util.find_spec(name) is None]
    if missing:
        raise BayesExtraMissing(
            f"the Bayesian beta regression needs {' and '.join(missing)}: "
            f"install the optional extra with {bayes_install_command()}"
        )


@dataclass(frozen=True)
class BetaModelSpec:
    """Which terms a beta-regression variant has (the intercept and prior always)."""

    name: str
    advice: AdviceCoding
    """"none": no advice term; "pooled": one weight on s * logit(a); "split": w_same and
    w_opposite."""
    shown: bool
    """Whether the design has the choice-support (display = shown) flag."""
    description: str = ""

    @property
    def terms(self) -> tuple[str, ...]:
        """The design terms, in TERM_ORDER."""
        wanted = {"intercept", "prior_weight"}
        if self.shown:
            wanted.add("choice_support")
        if self.advice == "pooled":
            wanted.add("w_advice")
        elif self.advice == "split":
            wanted.update(("w_same", "w_opposite"))
        return tuple(term for term in TERM_ORDER if term in wanted)


VARIANTS: Final[Mapping[str, BetaModelSpec]] = {
    "A": BetaModelSpec("A", "none", shown=False, description="prior only"),
    "B": BetaModelSpec("B", "split", shown=False, description="no display flag"),
    "C": BetaModelSpec("C", "pooled", shown=True, description="one advice weight"),
    "D": BetaModelSpec(
        "D", "split", shown=True, description="separate same/opposite weights + shown flag"
    ),
}
"""The four nested variants of docs/paradigm.md §5."""


def variant_spec(variant: str | BetaModelSpec) -> BetaModelSpec:
    """The spec of a variant name ("A"-"D"), or `variant` itself when already a spec."""
    if isinstance(variant, BetaModelSpec):
        return variant
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown beta-regression variant {variant!r}; use A, B, C or D") from None


@dataclass(frozen=True)
class BetaPriors:
    """Prior scales (see the module docstring for why these)."""

    coef_sd: float = 2.5
    """Normal(0, coef_sd) on every coefficient."""
    log_kappa_mean: float = 3.0
    log_kappa_sd: float = 2.0
    """kappa ~ LogNormal(log_kappa_mean, log_kappa_sd)."""


@dataclass(frozen=True)
class SamplerSettings:
    """How the posterior was drawn."""

    draws: int = 1000
    """Kept draws per chain."""
    tune: int = 500
    """Tuning steps per chain (step size only: the metric comes from the Laplace fit)."""
    chains: int = 4
    cores: int | None = None
    """Processes; None: min(chains, CPUs)."""
    seed: int = 0
    target_accept: float = 0.8


@dataclass(frozen=True, eq=False)
class BetaData:
    """A trials table coded for the beta regression."""

    design: pd.DataFrame
    """One column per term, one row per usable trial."""
    q: FloatArray
    """The unclipped final probability of the initially chosen option."""
    cells: pd.DataFrame
    """display, advice and accuracy of each row (for cell-level summaries)."""
    source_index: pd.Index
    """The rows' labels in the trials table they came from."""

    def __len__(self) -> int:
        return len(self.design)


def code_trials(trials: pd.DataFrame, terms: tuple[str, ...] = TERM_ORDER) -> BetaData:
    """The design (columns `terms`) and response of the trials the model can use.

    Used: trials with a known initial confidence and final probability and a known advice
    type (a future paradigm's advice type has no term: left out, not read as neutral), whose
    advice evidence is finite (neutral advice needs no accuracy), on a main display (shown,
    hidden, other: the controls are not pooled into the shown flag). The evidence is the
    Bayes log-odds shift `bayes_shift` (K options; +-logit(a) for two), at the simulated
    agent's clip bounds whatever the table's Bayes baseline used (`analysis.data.prepare`). A
    run's trials table as read is refused: its confidences are not on the analysis's scale.
    """
    refuse_as_read(trials)
    if is_prepared(trials):
        trials = at_bayes_clip(trials, BAYES_CLIP)
    c = trials["initial_confidence"].to_numpy(np.float64)
    q = trials["final_prob_initial"].to_numpy(np.float64)
    advice = trials["advice"]
    # The K-option Bayes log-odds shift (+-logit(a) for two options): the update fit's term
    # (`analysis.measures.fit`).
    shifts = trials if "bayes_shift" in trials.columns else with_bayes(trials)
    evidence = shifts["bayes_shift"].to_numpy(np.float64)
    same = advice.eq("same").to_numpy(bool)
    opposite = advice.eq("opposite").to_numpy(bool)
    columns = {
        "intercept": np.ones(len(trials)),
        "prior_weight": logit(c),
        "choice_support": trials["display"].eq("shown").to_numpy(np.float64),
        "w_advice": evidence,
        "w_same": np.where(same, evidence, 0.0),
        # evidence is negative on opposite trials: the sign that makes w_opposite = 1 Bayesian.
        "w_opposite": np.where(opposite, evidence, 0.0),
    }
    known = advice.isin(list(ADVICE_SIGN)).to_numpy(bool)
    main = trials["display"].isin(list(MAIN_DISPLAYS)).to_numpy(bool)
    keep = known & main & np.isfinite(c) & np.isfinite(q) & np.isfinite(evidence)
    design = pd.DataFrame({term: columns[term][keep] for term in terms})
    cells = trials.loc[keep, ["display", "advice", "accuracy"]].reset_index(drop=True)
    return BetaData(design, q[keep], cells, trials.index[keep])


def identifiable_terms(design: pd.DataFrame) -> tuple[str, ...]:
    """The terms that add to the design's rank, in order (the rest the data cannot inform).

    E.g. with every trial hidden the shown flag is all zeros; with every trial shown it
    equals the intercept. Such a term would be estimated from its prior alone.
    """
    kept: list[str] = []
    for term in design.columns:
        candidate = design[[*kept, term]].to_numpy()
        if np.linalg.matrix_rank(candidate) == len(kept) + 1:
            kept.append(str(term))
    return tuple(kept)


@dataclass(frozen=True, eq=False)
class BetaFit:
    """A fitted beta-regression variant: posterior draws, summary and diagnostics."""

    spec: BetaModelSpec
    terms: tuple[str, ...]
    """The fitted terms (the spec's identifiable ones)."""
    dropped: tuple[str, ...]
    """Terms of the spec left out as not identifiable in these trials."""
    coef: FloatArray
    """Posterior draws, shape (chains, draws, len(terms))."""
    kappa: FloatArray
    """Posterior draws of the precision, shape (chains, draws)."""
    summary: pd.DataFrame
    """Per parameter (terms, then kappa): mean, sd, ci_low, ci_high (equal-tailed, `ci_prob`),
    r_hat, ess_bulk, ess_tail."""
    ci_prob: float
    divergences: int
    mean_steps: float
    """Mean leapfrog steps per draw (cost; a jump means a hard posterior)."""
    n: int
    n_censored_low: int
    n_censored_high: int
    data: BetaData = field(repr=False)
    priors: BetaPriors
    settings: SamplerSettings
    seconds: float
    """Wall time of the fit, Laplace start and sampling."""
    idata: Any = field(default=None, repr=False)
    """The ArviZ InferenceData, for plots and further diagnostics."""

    @property
    def name(self) -> str:
        """The variant's name."""
        return self.spec.name

    def mean(self, parameter: str) -> float:
        """Posterior mean of a term or of kappa; NaN for a term not fitted."""
        if parameter not in self.summary.index:
            return float("nan")
        return float(self.summary.loc[[parameter], "mean"].to_numpy(np.float64)[0])

    def interval(self, parameter: str) -> tuple[float, float]:
        """The `ci_prob` equal-tailed interval of a term or kappa (NaNs when not fitted)."""
        if parameter not in self.summary.index:
            return (float("nan"), float("nan"))
        low, high = self.summary.loc[parameter, ["ci_low", "ci_high"]].to_numpy(np.float64)
        return (float(low), float(high))

    def draws(self) -> tuple[FloatArray, FloatArray]:
        """(coef (S, k), kappa (S,)) with the chains stacked: S = chains * draws."""
        k = len(self.terms)
        return self.coef.reshape(-1, k), self.kappa.reshape(-1)

    @property
    def max_r_hat(self) -> float:
        """Largest r_hat of any parameter (converged chains: below 1.01)."""
        return float(self.summary["r_hat"].max())

    @property
    def min_ess_bulk(self) -> float:
        """Smallest bulk effective sample size of any parameter."""
        return float(self.summary["ess_bulk"].min())


def arviz() -> Any:
    """ArviZ, imported on first use (the optional `bayes` extra); untyped, hence Any."""
    require_bayes()
    return importlib.import_module("arviz")


def _summary(idata: Any, terms: tuple[str, ...], ci_prob: float) -> pd.DataFrame:
    az = arviz()

    posterior = idata.posterior
    coef = np.asarray(posterior["coef"].to_numpy(), dtype=np.float64)
    kappa = np.asarray(posterior[KAPPA].to_numpy(), dtype=np.float64)
    series = {term: coef[:, :, j] for j, term in enumerate(terms)} | {KAPPA: kappa}
    tail = (1.0 - ci_prob) / 2.0
    rows = {}
    for name, values in series.items():
        flat = values.reshape(-1)
        rows[name] = {
            "mean": float(flat.mean()),
            "sd": float(flat.std(ddof=1)),
            "ci_low": float(np.quantile(flat, tail)),
            "ci_high": float(np.quantile(flat, 1.0 - tail)),
            "r_hat": float(az.rhat(values)),
            "ess_bulk": float(az.ess(values, method="bulk")),
            "ess_tail": float(az.ess(values, method="tail")),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    return table


def fit_beta_model(
    trials: pd.DataFrame,
    variant: str | BetaModelSpec = "D",
    *,
    priors: BetaPriors | None = None,
    settings: SamplerSettings | None = None,
    ci_prob: float = 0.95,
) -> BetaFit:
    """Fit one variant to `trials` (normally one model's trials) by NUTS.

    Raises `BayesExtraMissing` without PyMC/ArviZ, and `AnalysisInputError` when fewer
    usable trials than parameters remain.
    """
    require_bayes()
    from mindshift.analysis.beta import (
        sampler as beta_sampler,  # PyMC is imported only here (the `bayes` extra)
    )
    from mindshift.analysis.beta.likelihood import beta_response

    spec = variant_spec(variant)
    priors = priors or BetaPriors()
    settings = settings or SamplerSettings()
    coded = code_trials(trials, spec.terms)
    terms = identifiable_terms(coded.design) if len(coded) else ()
    if len(coded) <= len(terms) + 1 or not terms:
        raise AnalysisInputError(
            f"the beta regression needs more usable trials than parameters; {len(coded)} "
            "trials have known confidences and advice"
        )
    dropped = tuple(term for term in spec.terms if term not in terms)
    data = BetaData(coded.design[list(terms)], coded.q, coded.cells, coded.source_index)
    response = beta_response(data.q)
    design = data.design.to_numpy(np.float64)
    prior_mean = np.zeros(len(terms))
    prior_sd = np.full(len(terms), priors.coef_sd)
    started = time.perf_counter()
    start = beta_sampler.laplace(
        design,
        response,
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        log_kappa_mean=priors.log_kappa_mean,
        log_kappa_sd=priors.log_kappa_sd,
    )
    model = beta_sampler.build_model(
        design,
        terms,
        response,
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        log_kappa_mean=priors.log_kappa_mean,
        log_kappa_sd=priors.log_kappa_sd,
    )
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    idata = beta_sampler.sample(
        model,
        start,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=cores,
        seed=settings.seed,
        target_accept=settings.target_accept,
    )
    seconds = time.perf_counter() - started
    stats = idata.sample_stats
    return BetaFit(
        spec=spec,
        terms=terms,
        dropped=dropped,
        coef=np.asarray(idata.posterior["coef"].to_numpy(), dtype=np.float64),
        kappa=np.asarray(idata.posterior[KAPPA].to_numpy(), dtype=np.float64),
        summary=_summary(idata, terms, ci_prob),
        ci_prob=ci_prob,
        divergences=int(stats["diverging"].sum()),
        mean_steps=float(stats["n_steps"].mean()),
        n=len(data),
        n_censored_low=int(np.count_nonzero(data.q <= CLIP_LOW)),
        n_censored_high=int(np.count_nonzero(data.q >= CLIP_HIGH)),
        data=data,
        priors=priors,
        settings=settings,
        seconds=seconds,
        idata=idata,
    )
