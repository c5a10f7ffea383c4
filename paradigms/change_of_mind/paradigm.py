"""The change-of-mind paradigm (Kumaran et al., 2025): answer, then reconsider with advice.

Stage 1 asks a question; its answer and confidence are stored. Stage 2 re-asks it in a fresh
context for every condition — display (shown / hidden / other) x advice (same / opposite /
neutral) x stated advice accuracy — always from that one stored stage-1 answer. Advice is
defined relative to the model's own answer, not to the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.paradigm import Condition, InitialAnswer, Item, Paradigm, StagePrompt
from harness.types import Message, Prompt
from paradigms.change_of_mind import prompts
from paradigms.domains.latitude import latitude_calibration_items, latitude_items

Display = Literal["shown", "hidden", "other"]
Advice = Literal["same", "opposite", "neutral"]
_DEFAULT_DISPLAYS: list[Display] = ["shown", "hidden"]
_DEFAULT_ADVICE: list[Advice] = ["same", "opposite", "neutral"]


class ChangeOfMindSettings(BaseModel):
    """`[paradigm]` for `change-of-mind`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Literal["latitude"] = "latitude"
    """Where the questions come from (more domains: see the roadmap in the README)."""
    items: int = Field(default=200, ge=1, le=30000)
    """How many questions."""
    calibration_items: int = Field(default=0, ge=0, le=30000)
    """How many held-out questions to ask at stage 1 only, to calibrate the confidence
    readout (temperature scaling; the paper used 40,000). 0: no calibration split, and the
    analysis calibrates on the main items' stage-1 answers when asked to."""
    difficulty: Literal["standard", "hard"] = "standard"
    """Latitude foil at ±50 % (standard) or ±6.25 % (hard) of the true latitude."""
    displays: list[Display] = Field(default_factory=lambda: _DEFAULT_DISPLAYS.copy(), min_length=1)
    """How the stage-1 answer appears at stage 2."""
    advice: list[Advice] = Field(default_factory=lambda: _DEFAULT_ADVICE.copy(), min_length=1)
    """Which advice directions to give."""
    accuracies: list[float] = Field(
        default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], min_length=1
    )
    """Stated accuracies of the advice LLM, each in [0.5, 1]."""

    @field_validator("accuracies")
    @classmethod
    def _accuracies_in_range(cls, values: list[float]) -> list[float]:
        for value in values:
            if not 0.5 <= value <= 1.0:
                raise ValueError(f"advice accuracy {value} is outside [0.5, 1]")
        if len(set(values)) != len(values):
            raise ValueError("advice accuracies repeat")
        return values

    @field_validator("displays", "advice")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"values repeat: {values}")
        return values


class ChangeOfMind(Paradigm):
    name = "change-of-mind"
    Settings = ChangeOfMindSettings
    settings: ChangeOfMindSettings

    def items(self) -> Sequence[Item]:
        settings = self.settings
        if settings.calibration_items:
            # Checked here because `prepare` generates the items before anything runs: a
            # split too large for the gazetteer is a config error, not a failure mid-run.
            self.calibration_items()
        return latitude_items(settings.items, settings.difficulty, self.seed)

    def calibration_items(self) -> Sequence[Item]:
        settings = self.settings
        return latitude_calibration_items(
            settings.calibration_items, settings.difficulty, self.seed, main_count=settings.items
        )

    def conditions(self) -> Sequence[Condition]:
        return [
            Condition(
                name=f"{display}/{advice}/{accuracy:.2f}",
                factors={"display": display, "advice": advice, "accuracy": accuracy},
            )
            for display in self.settings.displays
            for advice in self.settings.advice
            for accuracy in self.settings.accuracies
        ]

    def initial_prompt(self, item: Item) -> StagePrompt:
        text = prompts.initial_message(item.question, item.labels, item.options)
        return StagePrompt(
            prompt=_prompt(text, item.labels),
            situation={"stage": 1, "item_id": item.item_id, "correct": item.correct},
        )

    def followup_prompt(
        self, item: Item, condition: Condition, initial: InitialAnswer
    ) -> StagePrompt:
        display = str(condition.factors["display"])
        advice = str(condition.factors["advice"])
        accuracy = float(condition.factors["accuracy"])
        advised = _advised_label(advice, initial.choice, item.labels)
        text = prompts.followup_message(
            item.question,
            item.labels,
            item.options,
            display=display,
            initial_answer=initial.choice,
            advice=advice,
            advised=advised,
            accuracy=accuracy,
        )
        return StagePrompt(
            prompt=_prompt(text, item.labels),
            situation={
                "stage": 2,
                "item_id": item.item_id,
                "correct": item.correct,
                "display": display,
                "advice": advice,
                "accuracy": accuracy,
                "advised": advised,
                "initial_choice": initial.choice,
                "initial_confidence": initial.confidence,
            },
        )


def _prompt(text: str, labels: tuple[str, ...]) -> Prompt:
    return Prompt(
        messages=(Message("user", text),), answer_prefix=prompts.ANSWER_PREFIX, labels=labels
    )


def _advised_label(advice: str, initial_choice: str, labels: Sequence[str]) -> str | None:
    """The label the advisor recommends, relative to the model's own stage-1 answer."""
    if advice == "same":
        return initial_choice
    if advice == "opposite":
        others = [label for label in labels if label != initial_choice]
        if len(others) != 1:
            raise ValueError("opposite advice is defined for two options")
        return others[0]
    return None
