"""The one clipping rule for log-odds, shared by the Bayes baseline, the measures and the fit.

Stated advice accuracies reach 1.0 and read-out confidences reach 0 or 1, where log-odds are
infinite. Every logit in the analysis goes through `clip` first. The default bounds,
[BAYES_CLIP, 1 - BAYES_CLIP] = [0.01, 0.99], are the simulated agent's (docs/design.md), so
the agent, the Bayes baseline and the fit agree exactly: an ideal agent then has an OUCS of
exactly zero, and the fit recovers its parameters.

The Bayes baseline's bound is a choice of the analysis (`mindshift analyse --bayes-clip`):
`bound=0` is exact Bayes. Then a = 1.0 (or a confidence of exactly 0 or 1) has infinite
log-odds: the posterior is 1 or 0 (expit of +-inf), a certain prior against certain
contrary evidence (inf - inf) is undefined (NaN, left out of every mean), and measures on
the log-odds scale leave out trials whose log-odds are not finite. The Tobit update fit keeps
the agent's bounds whatever the Bayes baseline uses: its censoring points are part of its
parameter model.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from mindshift.analysis.errors import AnalysisInputError

FloatArray = npt.NDArray[np.float64]

BAYES_CLIP: Final[float] = 0.01
"""The default bound: probabilities are clipped to [BAYES_CLIP, 1 - BAYES_CLIP] before a
logit (the simulated agent's rule)."""
CLIP_LOW: Final[float] = BAYES_CLIP
"""Smallest probability that enters a logit at the default bound."""
CLIP_HIGH: Final[float] = 1.0 - BAYES_CLIP
"""Largest probability that enters a logit at the default bound."""


def check_bound(bound: float) -> float:
    """`bound` as a float if 0 <= bound < 0.5; `AnalysisInputError` otherwise."""
    try:
        value = float(bound)
    except (TypeError, ValueError) as error:
        raise AnalysisInputError(f"bayes clip {bound!r} is not a number") from error
    if not (math.isfinite(value) and 0.0 <= value < 0.5):
        raise AnalysisInputError(
            f"bayes clip must satisfy 0 <= x < 0.5 (0 = exact Bayes), got {bound!r}"
        )
    return value


def clip(p: npt.ArrayLike, bound: float = BAYES_CLIP) -> FloatArray:
    """Probabilities clipped to [bound, 1 - bound]; NaN stays NaN (unknown stays unknown)."""
    return np.clip(np.asarray(p, dtype=np.float64), bound, 1.0 - bound)


def logit(p: npt.ArrayLike, bound: float = BAYES_CLIP) -> FloatArray:
    """Log-odds of `clip(p, bound)` (+-inf at 1 and 0 when `bound` is 0).

    The clip is inside the function, not left to callers, so no code path can take the logit
    of an unclipped probability and disagree with the agent or the baseline.
    """
    q = clip(p, bound)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def expit(x: npt.ArrayLike) -> FloatArray:
    """The logistic function, the inverse of `logit` inside the clip bounds."""
    return np.asarray(special.expit(np.asarray(x, dtype=np.float64)), dtype=np.float64)
