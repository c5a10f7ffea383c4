"""What an advisor recommends, relative to the answer a trial is framed on.

Shared by the protocols that give advice (`change-of-mind`, `multi-advice`, and the pushback
of `are-you-sure` that names an option): `same` advice recommends the framed answer,
`opposite` advice one of the K - 1 other options, chosen uniformly and deterministically
from a key (the item and condition), `neutral` advice none. With two options the other option
is the only choice and nothing is drawn. This is the advisor the K-option Bayes baseline
assumes: a wrong advisor picks uniformly among the options it does not recommend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mindshift.harness.trial_ids import seed_from_id


def pick_uniform(labels: Sequence[str], key: str, salt: str) -> str:
    """One of `labels`, uniformly and deterministically from `key` (no draw for one label)."""
    if not labels:
        raise ValueError("no option to pick from")
    if len(labels) == 1:
        return labels[0]
    rng = np.random.default_rng(seed_from_id(key, salt))
    return labels[int(rng.integers(len(labels)))]


def advised_label(
    advice: str, framed: str, labels: Sequence[str], key: str, salt: str
) -> str | None:
    """The label an advisor of this `advice` type recommends, relative to `framed`."""
    if advice == "same":
        return framed
    if advice == "opposite":
        return pick_uniform([label for label in labels if label != framed], key, salt)
    return None
