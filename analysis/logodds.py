"""The one clipping rule for log-odds, shared by the Bayes baseline, the measures and the fit.

Stated advice accuracies reach 1.0 and read-out confidences reach 0 or 1, where log-odds are
infinite. Every logit in the analysis goes through `clip` first, with the same bounds the
simulated agent uses (DESIGN.md), so the agent, the Bayes baseline and the fit agree exactly:
an ideal agent then has an OUCS of exactly zero, and the fit recovers its parameters.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]

CLIP_LOW: Final[float] = 0.01
"""Smallest probability that enters a logit."""
CLIP_HIGH: Final[float] = 0.99
"""Largest probability that enters a logit."""


def clip(p: npt.ArrayLike) -> FloatArray:
    """Probabilities clipped to [CLIP_LOW, CLIP_HIGH]; NaN stays NaN (unknown stays unknown)."""
    return np.clip(np.asarray(p, dtype=np.float64), CLIP_LOW, CLIP_HIGH)


def logit(p: npt.ArrayLike) -> FloatArray:
    """Log-odds of `clip(p)`.

    The clip is inside the function, not left to callers, so no code path can take the logit
    of an unclipped probability and disagree with the agent or the baseline.
    """
    q = clip(p)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def expit(x: npt.ArrayLike) -> FloatArray:
    """The logistic function, the inverse of `logit` inside the clip bounds."""
    return np.asarray(special.expit(np.asarray(x, dtype=np.float64)), dtype=np.float64)
