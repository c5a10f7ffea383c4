"""Turning next-token log-probabilities into option probabilities, and sampling a choice.

Rules that every backend shares:
- token variants of a label ("A", " A", "A\\n") are merged by summing their probabilities;
- a log-probability of 0.0 is probability 1, the most confident answer, never "missing";
- a label absent from a truncated (top-k) list is censored: its probability is unknown and
  bounded above by the smallest probability returned; nothing is invented for it;
- probability on tokens that are no label is recorded as `outside_mass`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mindshift.harness.types import OptionReadout


class ReadoutError(ValueError):
    """The provider's log-probabilities cannot be read (NaN, positive, or no labels given)."""


def label_of_token(token: str, labels: Sequence[str]) -> str | None:
    """The option label a token spells, ignoring surrounding whitespace; None if none."""
    stripped = token.strip()
    return stripped if stripped in labels else None


def readout_from_masses(
    mass: Mapping[str, float | None],
    top_logprobs: Iterable[tuple[str, float]] = (),
    upper_bound: Mapping[str, float] | None = None,
) -> OptionReadout:
    """Build a readout from per-label probability mass (None marks a censored label)."""
    if not mass:
        raise ReadoutError("no option labels to read")
    bounds = dict(upper_bound or {})
    censored = any(value is None for value in mass.values())
    seen_total = math.fsum(value for value in mass.values() if value is not None)
    probs: dict[str, float] | None = None
    outside: float | None = None
    if not censored:
        # Rounding in the provider's numbers can push the sum a hair above 1.
        outside = max(0.0, 1.0 - seen_total)
        if seen_total > 0.0:
            probs = {
                label: float(value) / seen_total
                for label, value in mass.items()
                if value is not None
            }
    return OptionReadout(
        mass={label: (None if value is None else float(value)) for label, value in mass.items()},
        probs=probs,
        outside_mass=outside,
        censored=censored,
        upper_bound={
            label: bounds[label] for label in mass if mass[label] is None and label in bounds
        },
        top_logprobs=[(tok, float(lp)) for tok, lp in top_logprobs],
    )


def readout_from_top_logprobs(
    top_logprobs: Sequence[tuple[str, float]],
    labels: Sequence[str],
    *,
    complete: bool = False,
) -> OptionReadout:
    """Read the labels out of a list of (token, logprob) alternatives at the answer position.

    `complete` says the list is the whole distribution (a local model), so an absent label
    has probability exactly 0 rather than an unknown one.
    """
    if not labels:
        raise ReadoutError("no option labels to read")
    mass: dict[str, float | None] = {label: None for label in labels}
    for token, logprob in top_logprobs:
        if math.isnan(logprob) or logprob > 1e-6:
            raise ReadoutError(f"invalid log-probability {logprob!r} for token {token!r}")
        label = label_of_token(token, labels)
        if label is None:
            continue
        previous = mass[label]
        # `is None`, not falsiness: a previous mass of 0.0 is a real value.
        mass[label] = math.exp(min(logprob, 0.0)) + (0.0 if previous is None else previous)
    bounds: dict[str, float] = {}
    if complete:
        mass = {label: (0.0 if value is None else value) for label, value in mass.items()}
    else:
        # exp is monotone: the exp of the smallest logprob is the smallest probability,
        # one exp instead of one per alternative.
        lowest = min((lp for _, lp in top_logprobs), default=0.0)
        smallest = math.exp(min(lowest, 0.0))
        bounds = {label: smallest for label, value in mass.items() if value is None}
    return readout_from_masses(mass, top_logprobs, bounds)


def tempered(probs: Mapping[str, float], temperature: float) -> dict[str, float]:
    """Apply a sampling temperature to option probabilities (p ** (1/T), renormalised)."""
    labels = list(probs)
    values = np.array([probs[label] for label in labels], dtype=float)
    if temperature <= 0.0:
        best = int(np.argmax(values))
        return {label: float(i == best) for i, label in enumerate(labels)}
    with np.errstate(divide="ignore"):
        logits = np.log(values) / temperature
    logits -= logits.max()
    weights = np.exp(logits)
    weights /= weights.sum()
    return {label: float(w) for label, w in zip(labels, weights, strict=True)}


def sample_choice(probs: Mapping[str, float], temperature: float, seed: int) -> str:
    """Sample a label from option probabilities at a temperature, reproducibly from `seed`."""
    if not probs:
        raise ReadoutError("no option probabilities to sample from")
    weights = tempered(probs, temperature)
    draw = np.random.default_rng(seed).random()
    cumulative = 0.0
    labels = list(weights)
    for label in labels:
        cumulative += weights[label]
        if draw < cumulative:
            return label
    return labels[-1]
