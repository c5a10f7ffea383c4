"""The normative baseline: an ideal Bayesian observer's confidence after the advice.

On the log-odds scale of the initially chosen option, with c the turn-1 confidence and a the
stated advice accuracy: logit(post) = logit(c) + s * logit(a), s = +1 (same), -1 (opposite),
0 (neutral) — equal to c*a / (c*a + (1-c)*(1-a)) for `same` away from the clip bounds. Both
logits use the shared clip (`analysis.logodds`), exactly as the simulated agent does, so a
Bayesian agent matches this baseline to rounding error.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.logodds import FloatArray, expit, logit

ADVICE_SIGN: Final[dict[str, float]] = {"same": 1.0, "opposite": -1.0, "neutral": 0.0}
"""Direction of the advice's evidence for the initially chosen option."""


def advice_sign(advice: npt.ArrayLike) -> FloatArray:
    """+1 / -1 / 0 for same / opposite / neutral advice; NaN for an unknown advice type."""
    # Factorise first: one dictionary look-up per distinct label, not per trial.
    flat = advice if isinstance(advice, pd.Series) else np.ravel(np.asarray(advice, dtype=object))
    codes, labels = pd.factorize(flat)
    lookup = np.array([ADVICE_SIGN.get(str(label), np.nan) for label in labels] + [np.nan])
    # Code -1 (a missing label) indexes the trailing NaN.
    return np.asarray(lookup[codes].reshape(np.shape(advice)), dtype=np.float64)


def advice_evidence(accuracy: npt.ArrayLike, advice: npt.ArrayLike) -> FloatArray:
    """s * logit(a): the advice's log-likelihood ratio for the initially chosen option.

    Neutral advice carries no evidence whatever accuracy is recorded for it (even a missing
    one), so it is exactly 0 rather than 0 * NaN.
    """
    sign = advice_sign(advice)
    log_odds = logit(accuracy)
    return np.asarray(np.where(sign == 0.0, 0.0, sign * log_odds), dtype=np.float64)


def bayes_posterior(
    confidence: npt.ArrayLike, accuracy: npt.ArrayLike, advice: npt.ArrayLike
) -> FloatArray:
    """The ideal observer's probability of the initially chosen option after the advice.

    For two options only: with K > 2 options, opposite advice names one particular other
    option, and the posterior needs that option's own initial probability (PARADIGM.md 4).
    """
    return expit(logit(confidence) + advice_evidence(accuracy, advice))


def with_bayes(trials: pd.DataFrame) -> pd.DataFrame:
    """`trials` with a `bayes_post` column; NaN where the confidence is unknown or K != 2.

    Multi-option trials get NaN rather than the two-option formula: a number that silently
    ignores the other options' probabilities would be wrong, and the CoM measures need none.
    """
    posterior = bayes_posterior(
        trials["initial_confidence"].to_numpy(np.float64),
        trials["accuracy"].to_numpy(np.float64),
        trials["advice"],
    )
    binary = trials["n_options"].to_numpy() == 2
    return trials.assign(bayes_post=np.where(binary, posterior, np.nan))
