"""Temperature scaling of the confidence readout: the confidence scale the measures read.

Temperature scaling (Guo et al. 2017) divides the option logits by one positive number T per
model, fitted by maximum likelihood of the correct option: with p the read-out option
probabilities, calibrated p'_k = softmax(log p / T)_k; for two options
logit(p') = logit(p) / T. T > 1 means the raw readout was overconfident (Gemma 3 12B in the
paper: T = 3.3). The logit here is the unclipped one: the clip bounds belong to the update
analysis, not to the readout.

What it is fitted on: the model's calibration split (held-out items asked at stage 1 only,
`[paradigm] calibration_items`); a model without one falls back on its main items' stage-1
answers, which is in-sample (the same answers then enter the measures) and is said so wherever
the temperature is shown. Fewer than MIN_CALIBRATION usable answers, or a temperature at a
bound of T_BOUNDS (the data cannot pin it down, e.g. every answer correct), give no usable
temperature.

Which confidence is scaled (`prior` mode of the analysis):
- "raw": none; the read-out probabilities as they are.
- "calibrated": every model with a usable temperature (split or fallback).
- "auto" (the default): the models that have a calibration split; the others stay raw.
The temperature is applied to *both* readouts of a trial, the initial confidence and the final
probability of the initial choice: the Bayes prior is the calibrated turn-1 confidence, and a
final confidence on another scale would make every confidence change, OUCS and overweighting
ratio mix the two scales (a model that repeats its own readout would appear to update).
Two-option trials only: with more options the trials table keeps only the chosen option's
probability, not the full distribution the scaling needs, and those trials stay raw.

How well the readout is calibrated, before and after scaling (ECE, Brier, AUROC), is a
measure: `analysis.measures.calibration`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special, stats

from mindshift.analysis.data.schema import CALIBRATION, MAIN, model_ids
from mindshift.analysis.engines.clustered import LEVEL
from mindshift.analysis.engines.logodds import FloatArray
from mindshift.analysis.errors import AnalysisInputError

Prior = Literal["auto", "raw", "calibrated"]
PRIOR_MODES: Final[tuple[Prior, ...]] = ("auto", "raw", "calibrated")
MIN_CALIBRATION: Final = 20
"""Fewest usable stage-1 answers a temperature is fitted on."""
T_BOUNDS: Final = (0.05, 100.0)
"""The temperature is searched in this range; an optimum at either end is not usable."""
PROB_FLOOR: Final = 1e-12
"""A read-out probability of exactly 0 (an underflow) is taken as this before its log, so one
such readout cannot make the likelihood infinite."""

SOURCE_SPLIT: Final = "calibration split"
SOURCE_MAIN: Final = "main items (no calibration split; in-sample)"

TEMPERATURE_COLUMNS: Final = (
    "model",
    "source",
    "n",
    "temperature",
    "ci_low",
    "ci_high",
    "nll_raw",
    "nll_calibrated",
    "usable",
)


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature with its interval (profile of the likelihood in log T)."""

    temperature: float
    ci_low: float
    ci_high: float
    n: int
    nll_raw: float
    """Mean negative log-likelihood of the correct option before scaling (T = 1)."""
    nll_calibrated: float
    at_bound: bool


@dataclass(frozen=True)
class StageOneMatrix:
    """Usable stage-1 answers of one model as arrays: probabilities (n x K) and indices."""

    probs: FloatArray
    correct_index: npt.NDArray[np.int64]
    choice_index: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.correct_index.size)


def stage1_matrix(stage1: pd.DataFrame) -> StageOneMatrix:
    """The rows of a stage-1 table with known probabilities and indices, as arrays.

    Rows whose number of options differs from the most common one are left out (one model
    answers one kind of question; a mixture has no single softmax).
    """
    known = stage1["probs"].notna() & stage1["correct_index"].ge(0) & stage1["choice_index"].ge(0)
    rows = stage1.loc[known]
    if rows.empty:
        return StageOneMatrix(np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64))
    sizes = rows["probs"].map(len)
    rows = rows.loc[sizes == sizes.mode().iloc[0]]
    probs = np.asarray(np.stack(rows["probs"].map(np.asarray).to_list()), dtype=np.float64)
    return StageOneMatrix(
        probs=probs,
        correct_index=rows["correct_index"].to_numpy(np.int64),
        choice_index=rows["choice_index"].to_numpy(np.int64),
    )


def scale_probs(probs: npt.ArrayLike, temperature: float) -> FloatArray:
    """softmax(log p / T) row-wise: temperature-scaled option probabilities."""
    logp = np.log(np.maximum(np.asarray(probs, dtype=np.float64), PROB_FLOOR)) / temperature
    return np.asarray(special.softmax(logp, axis=-1), dtype=np.float64)


def scale_binary(p: npt.ArrayLike, temperature: float) -> FloatArray:
    """For two options: expit(logit(p) / T), with the unclipped logit (NaN stays NaN)."""
    q = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logodds = np.log(q) - np.log1p(-q)
    return np.asarray(special.expit(logodds / temperature), dtype=np.float64)


def negative_log_likelihood(
    logp: FloatArray, correct: npt.NDArray[np.int64], temperature: float
) -> float:
    """Total negative log-likelihood of the correct options at temperature T."""
    z = logp / temperature
    picked = z[np.arange(z.shape[0]), correct]
    return float(np.sum(special.logsumexp(z, axis=1) - picked))


def fit_temperature(matrix: StageOneMatrix) -> TemperatureFit:
    """Maximum-likelihood temperature for the answers in `matrix` (NaN when n < 2)."""
    n = matrix.n
    nan = float("nan")
    if n < 2:
        return TemperatureFit(nan, nan, nan, n, nan, nan, False)
    logp = np.log(np.maximum(matrix.probs, PROB_FLOOR))
    correct = matrix.correct_index
    low, high = math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])
    result = optimize.minimize_scalar(
        lambda u: negative_log_likelihood(logp, correct, math.exp(u)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-7},
    )
    u = float(result.x)
    at_bound = min(u - low, high - u) < 1e-3
    # Interval from the curvature of the total NLL in log T (answers independent).
    h = 1e-3
    curvature = (
        negative_log_likelihood(logp, correct, math.exp(u + h))
        - 2.0 * negative_log_likelihood(logp, correct, math.exp(u))
        + negative_log_likelihood(logp, correct, math.exp(u - h))
    ) / h**2
    z = float(stats.norm.ppf(0.5 + LEVEL / 2.0))
    spread = z / math.sqrt(curvature) if curvature > 0 else math.inf
    # A nearly flat likelihood (a handful of answers) gives a spread past exp's range: the
    # interval is then (0, inf) rather than an OverflowError.
    with np.errstate(over="ignore"):
        ci_high = float(np.exp(u + spread))
    return TemperatureFit(
        temperature=math.exp(u),
        ci_low=float(np.exp(u - spread)),
        ci_high=ci_high,
        n=n,
        nll_raw=negative_log_likelihood(logp, correct, 1.0) / n,
        nll_calibrated=negative_log_likelihood(logp, correct, math.exp(u)) / n,
        at_bound=at_bound,
    )


def split_matrix(stage1: pd.DataFrame, model: str, split: str) -> StageOneMatrix:
    """The usable stage-1 answers of `model` in `split` (MAIN or CALIBRATION), as arrays."""
    return stage1_matrix(stage1.loc[(stage1["model"] == model) & (stage1["split"] == split)])


def temperatures(stage1: pd.DataFrame) -> pd.DataFrame:
    """Per model: the fitted temperature and where it comes from (TEMPERATURE_COLUMNS)."""
    rows: list[dict[str, Any]] = []
    for model in model_ids(stage1):
        source, matrix = SOURCE_SPLIT, split_matrix(stage1, model, CALIBRATION)
        if matrix.n < MIN_CALIBRATION:
            source, matrix = SOURCE_MAIN, split_matrix(stage1, model, MAIN)
        fit = fit_temperature(matrix)
        usable = matrix.n >= MIN_CALIBRATION and not fit.at_bound and math.isfinite(fit.ci_high)
        rows.append(
            {
                "model": model,
                "source": source,
                "n": matrix.n,
                "temperature": fit.temperature,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "nll_raw": fit.nll_raw,
                "nll_calibrated": fit.nll_calibrated,
                "usable": bool(usable),
            }
        )
    table = pd.DataFrame(rows, columns=list(TEMPERATURE_COLUMNS))
    table["n"] = table["n"].astype(np.int64)
    return table


def chosen_temperatures(table: pd.DataFrame, prior: Prior) -> dict[str, float]:
    """The temperature applied per model under the `prior` mode (models absent stay raw)."""
    if prior not in PRIOR_MODES:
        raise AnalysisInputError(f"unknown prior {prior!r} (known: {', '.join(PRIOR_MODES)})")
    if prior == "raw":
        return {}
    chosen = table.loc[table["usable"]]
    if prior == "auto":
        chosen = chosen.loc[chosen["source"] == SOURCE_SPLIT]
    return {
        str(model): float(temperature)
        for model, temperature in zip(chosen["model"], chosen["temperature"], strict=True)
    }


def apply_calibration(trials: pd.DataFrame, chosen: Mapping[str, float]) -> pd.DataFrame:
    """`trials` with both turns' confidences of two-option trials scaled by the model's
    temperature: in the initial answer at turn 1 and at the row's turn (`final_prob_initial`),
    and, where the table has it, in the answer given at the row's turn (`final_confidence`).

    The read-out values are kept in `initial_confidence_raw`, `final_prob_initial_raw` (and
    `final_confidence_raw`); a model without a temperature in `chosen` keeps its raw values.
    """
    scaled = ["initial_confidence", "final_prob_initial"]
    if "final_confidence" in trials.columns:
        scaled.append("final_confidence")
    out = trials.assign(**{f"{name}_raw": trials[name] for name in scaled})
    if not chosen:
        return out
    values = {name: out[name].to_numpy(np.float64).copy() for name in scaled}
    models = out["model"].to_numpy()
    binary = out["n_options"].to_numpy() == 2
    for model, temperature in chosen.items():
        rows = (models == model) & binary
        for column in values.values():
            column[rows] = scale_binary(column[rows], temperature)
    return out.assign(**values)
