"""Laying out K-option items: labels, and exact counterbalancing of the correct position."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from mindshift.harness.types import Item, JsonValue

MAX_OPTIONS = 10


def labels_for(count: int) -> tuple[str, ...]:
    """A, B, C, ... for `count` options."""
    if not 2 <= count <= MAX_OPTIONS:
        raise ValueError(f"an item needs 2 to {MAX_OPTIONS} options, not {count}")
    return tuple(string.ascii_uppercase[:count])


def balanced_positions(count: int, n_options: int, rng: np.random.Generator) -> list[int]:
    """Where the correct option goes in each of `count` items: every position equally often
    (up to rounding), in a random order."""
    positions = np.arange(count) % n_options
    rng.shuffle(positions)
    return [int(p) for p in positions]


def place(
    item_id: str,
    question: str,
    correct: str,
    foils: Sequence[str],
    position: int,
    rng: np.random.Generator,
    meta: dict[str, JsonValue],
) -> Item:
    """An item with the correct option at `position` and the foils, shuffled, around it."""
    if correct in foils or len(set(foils)) != len(foils):
        raise ValueError(f"{item_id}: options are not distinct")
    shuffled = [foils[i] for i in rng.permutation(len(foils))]
    options = [*shuffled[:position], correct, *shuffled[position:]]
    labels = labels_for(len(options))
    return Item(
        item_id=item_id,
        question=question,
        labels=labels,
        options=tuple(options),
        correct=labels[position],
        meta=meta,
    )
