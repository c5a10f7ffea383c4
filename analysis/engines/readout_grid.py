"""The grid a text readout's confidences lie on, inferred from the confidences themselves.

A sampling readout of N answers gives frequencies k / N; a verbal readout states a number
rounded to some step. The trials table does not carry N or the step, but the values show
them: N is the smallest count whose multiples hold every value, the step the largest of
1, 5 and 10 points dividing every stated value. With few values a coarser grid than the
true one may fit by chance (every frequency even): the fit then reads the readout as
coarser than it is, which costs precision but adds no bias of its own.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MAX_SAMPLES: Final = 1000
"""The largest sample count searched (the config's upper limit on `samples`)."""
ROUNDING_STEPS: Final = (10, 5, 1)
"""The rounding steps (in points of 0-100) looked for, coarsest first."""
_TOLERANCE: Final = 1e-9


def _on_grid(values: npt.NDArray[np.float64], count: int) -> bool:
    scaled = values * count
    return bool(np.all(np.abs(scaled - np.round(scaled)) < _TOLERANCE * count))


def sample_count(values: npt.ArrayLike) -> int | None:
    """The smallest N (2..MAX_SAMPLES) with every value a multiple of 1 / N; None if none
    is, or if there are no finite values."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    for count in range(2, MAX_SAMPLES + 1):
        if _on_grid(finite, count):
            return count
    return None


def rounding_step(values: npt.ArrayLike) -> int | None:
    """The largest step in ROUNDING_STEPS (points of 0-100) dividing every value * 100;
    None if none does, or if there are no finite values."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    for step in ROUNDING_STEPS:
        if _on_grid(finite, 100 // step):
            return step
    return None
