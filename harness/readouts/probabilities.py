"""Option probabilities from what a readout without logprobs saw.

- Sampled answers: each option's frequency among the readable samples. Unreadable samples
  are the readout's `outside_mass` (the share of samples that named no option), never an
  option's.
- A stated confidence c in the chosen option (verbal, P(True)): the chosen option gets c and
  the other K - 1 options share 1 - c equally (`SPREAD_RULE`). With two options that is the
  only distribution with P(chosen) = c; with more, the reply says nothing about how the rest
  is spread, and an even spread is the assumption that adds least. A measure that needs the
  probability of a particular other option (the advised one under opposite advice) inherits
  this assumption; `report` names it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mindshift.harness.types import OptionReadout

SPREAD_RULE = "stated confidence c on the chosen option; 1 - c spread evenly over the others"
Z_99 = 2.5758293035489004
"""The two-sided 99 % standard-normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z_99) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (99 % by default)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def from_samples(samples: Sequence[str | None], labels: Sequence[str]) -> OptionReadout | None:
    """The frequencies of the readable samples; None when no sample named an option."""
    readable = [label for label in samples if label is not None]
    if not readable:
        return None
    counts = {label: readable.count(label) for label in labels}
    total = len(samples)
    mass: dict[str, float | None] = {label: counts[label] / total for label in labels}
    probs = {label: counts[label] / len(readable) for label in labels}
    return OptionReadout(
        mass=mass,
        probs=probs,
        outside_mass=(total - len(readable)) / total,
        censored=False,
    )


def from_stated(chosen: str, confidence: float, labels: Sequence[str]) -> OptionReadout:
    """The chosen option at `confidence`, the rest spread evenly (see `SPREAD_RULE`)."""
    confidence = min(1.0, max(0.0, confidence))
    others = [label for label in labels if label != chosen]
    share = (1.0 - confidence) / len(others) if others else 0.0
    probs = {label: (confidence if label == chosen else share) for label in labels}
    if not others:
        probs[chosen] = 1.0
    return OptionReadout(
        mass={label: value for label, value in probs.items()},
        probs=probs,
        outside_mass=0.0,
        censored=False,
    )
