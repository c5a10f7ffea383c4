"""What a paradigm gives the runner: items, conditions, and the prompts of its two stages.

A paradigm is a two-stage protocol. Stage 1 asks each item once (per repeat). Stage 2 asks it
again under every condition, each time in a fresh context built from the stored stage-1
answer. A paradigm may also hold out calibration items, asked at stage 1 only, whose answers
calibrate the confidence readout (temperature scaling) without entering any stage-2 measure.
Paradigms build prompts from harness types only and never see a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from harness.types import JsonValue, Prompt


@dataclass(frozen=True)
class Item:
    """One multiple-choice question."""

    item_id: str
    question: str
    labels: tuple[str, ...]
    options: tuple[str, ...]
    """Option texts, in the order of `labels`."""
    correct: str
    """The label of the correct option."""
    meta: dict[str, JsonValue] = field(default_factory=dict)
    """Domain facts worth keeping (the city, its true latitude, the foil's offset, ...)."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "id": self.item_id,
            "question": self.question,
            "labels": list(self.labels),
            "options": list(self.options),
            "correct": self.correct,
            "meta": self.meta,
        }


@dataclass(frozen=True)
class Condition:
    """One stage-2 condition: a name (part of the trial id) and its factor values."""

    name: str
    factors: dict[str, JsonValue]


@dataclass(frozen=True)
class InitialAnswer:
    """What stage 1 returned for an item, as stage 2 needs it."""

    choice: str
    probs: dict[str, float] | None
    """Option probabilities at stage 1; None for a choice-only model or a censored readout."""

    @property
    def confidence(self) -> float | None:
        """Probability of the chosen option, when known."""
        return None if self.probs is None else self.probs[self.choice]


@dataclass(frozen=True)
class StagePrompt:
    """A prompt plus the structured facts it expresses (read by the simulated agent)."""

    prompt: Prompt
    situation: dict[str, JsonValue]


class Paradigm(ABC):
    """A two-stage protocol. Subclasses set `name` and `Settings` and build the prompts."""

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]
    """Pydantic model of the `[paradigm]` table (extra keys forbidden)."""

    def __init__(self, settings: Any, seed: int) -> None:
        self.settings = settings
        self.seed = seed

    @abstractmethod
    def items(self) -> Sequence[Item]:
        """The items of this experiment, generated deterministically from the seed."""

    def calibration_items(self) -> Sequence[Item]:
        """Held-out items asked at stage 1 only, to calibrate the confidence readout.

        They must be disjoint from `items()` (a question used for calibration and for the
        main measures would be counted twice). The default: none.
        """
        return ()

    @abstractmethod
    def conditions(self) -> Sequence[Condition]:
        """Every stage-2 condition, in a fixed order."""

    @abstractmethod
    def initial_prompt(self, item: Item) -> StagePrompt:
        """The stage-1 prompt of an item."""

    @abstractmethod
    def followup_prompt(
        self, item: Item, condition: Condition, initial: InitialAnswer
    ) -> StagePrompt:
        """The stage-2 prompt of an item under a condition, from its stored stage-1 answer."""
