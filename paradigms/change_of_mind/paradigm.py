"""The change-of-mind paradigm (Kumaran et al., 2025): answer, then reconsider with advice.

Stage 1 asks a question; its answer and confidence are stored. Stage 2 re-asks it in a fresh
context for every condition — display x advice (same / opposite / neutral) x stated advice
accuracy — always from that one stored stage-1 answer. Advice is defined relative to the
answer the trial is framed on (the model's own, or the one displayed as its own), not to the
truth.

Displays: `shown` (the real answer), `hidden` (a placeholder), `other` (the same answer,
attributed to another LLM), and the paper's two controls: `answer-wrong` (displayed exactly
like `shown`, but always a wrong option: the model's own answer when it was wrong, otherwise
one of the wrong options, chosen uniformly and seeded by the item, so every condition of an
item shows the same one) and `in-context` (both turns in one conversation: the question, the
model's answer as its own assistant turn, then the advice).

K options: `same` advice recommends the framed answer; `opposite` advice recommends one of the
K - 1 other options, chosen uniformly and deterministically (seeded by the experiment seed, the
item id and the condition) — for two options, the other one. That is the advisor the K-option
Bayes baseline assumes (`analysis.engines.bayes`).

The stage-2 facts (`paradigms.facts.AdviceFacts`, read by `sim:bayes` and stored with every
call) carry the display, advice, accuracy, the advised label, the stage-1 choice, confidence
and full distribution (`initial_probs`), and `displayed`: the label shown as the initial
answer (None when hidden). Its trials-table columns are `paradigms.columns.AdviceColumns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mindshift.harness.paradigm import Condition, StagePrompt, TurnAnswer, TwoTurnParadigm
from mindshift.harness.types import Item, JsonValue, Message, Prompt
from mindshift.paradigms.advice import advised_label, pick_uniform
from mindshift.paradigms.change_of_mind import prompts
from mindshift.paradigms.columns import AdviceColumns, advice_columns
from mindshift.paradigms.domains import check_domain, domain_calibration_items, domain_items
from mindshift.paradigms.facts import AdviceFacts, AdviceKind, Display

_DEFAULT_DISPLAYS: list[Display] = ["shown", "hidden"]
_DEFAULT_ADVICE: list[AdviceKind] = ["same", "opposite", "neutral"]


class ChangeOfMindSettings(BaseModel):
    """`[paradigm]` for `change-of-mind`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = "latitude"
    """Where the questions come from: latitude | world-facts | arithmetic | file:PATH."""
    items: int = Field(default=200, ge=1, le=30000)
    """How many questions."""
    calibration_items: int = Field(default=0, ge=0, le=30000)
    """How many held-out questions to ask at stage 1 only, to calibrate the confidence
    readout (temperature scaling; the paper used 40,000). 0: no calibration split, and the
    analysis calibrates on the main items' stage-1 answers when asked to. For a file: the
    rows after the first `items`."""
    difficulty: Literal["standard", "hard"] = "standard"
    """Latitude only: foil at ±50 % (standard) or ±6.25 % (hard) of the true latitude."""
    displays: list[Display] = Field(default_factory=lambda: _DEFAULT_DISPLAYS.copy(), min_length=1)
    """How the stage-1 answer appears at stage 2 (answer-wrong, in-context: the controls)."""
    advice: list[AdviceKind] = Field(default_factory=lambda: _DEFAULT_ADVICE.copy(), min_length=1)
    """Which advice directions to give."""
    accuracies: list[float] = Field(
        default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], min_length=1
    )
    """Stated accuracies of the advice LLM, each in [0.5, 1]."""

    _domain = field_validator("domain")(check_domain)

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

    @model_validator(mode="after")
    def _difficulty_is_latitude_only(self) -> Self:
        # A "hard" world-facts run would silently be the standard one: say so instead.
        if self.difficulty != "standard" and self.domain != "latitude":
            raise ValueError(f"difficulty applies to the latitude domain only, not {self.domain}")
        return self


class ChangeOfMind(TwoTurnParadigm):
    name = "change-of-mind"
    Settings = ChangeOfMindSettings
    Facts = AdviceFacts
    Columns = AdviceColumns
    settings: ChangeOfMindSettings

    def items(self) -> Sequence[Item]:
        settings = self.settings
        if settings.calibration_items:
            # Checked here because `prepare` generates the items before anything runs: a
            # split too large for the domain is a config error, not a failure mid-run.
            self.calibration_items()
        return domain_items(settings.domain, settings.items, settings.difficulty, self.seed)

    def calibration_items(self) -> Sequence[Item]:
        s = self.settings
        return domain_calibration_items(
            s.domain, s.calibration_items, s.difficulty, self.seed, main_count=s.items
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
        return StagePrompt(prompts.user_prompt(text, item.labels), AdviceFacts.initial(item))

    def followup_prompt(self, item: Item, condition: Condition, initial: TurnAnswer) -> StagePrompt:
        display: Display = condition.factors["display"]
        advice: AdviceKind = condition.factors["advice"]
        accuracy = float(condition.factors["accuracy"])
        framed = self._framed_answer(item, display, initial.choice)
        advised = self._advised(item, condition, advice, framed)
        if display == "in-context":
            messages: tuple[Message, ...] = (
                Message("user", prompts.initial_message(item.question, item.labels, item.options)),
                Message("assistant", f"{prompts.ANSWER_PREFIX} {initial.choice}"),
                Message("user", prompts.in_context_followup(advice, advised, accuracy)),
            )
        else:
            text = prompts.followup_message(
                item.question,
                item.labels,
                item.options,
                display=display,
                initial_answer=framed,
                advice=advice,
                advised=advised,
                accuracy=accuracy,
            )
            messages = (Message("user", text),)
        facts = AdviceFacts.followup(
            item,
            initial,
            display=display,
            advice=advice,
            accuracy=accuracy,
            advised=advised,
            displayed=None if display == "hidden" else framed,
        )
        return StagePrompt(prompt=_prompt(messages, item.labels), facts=facts)

    @classmethod
    def trial_columns(
        cls, facts: Mapping[str, JsonValue], initial: TurnAnswer, final: TurnAnswer
    ) -> AdviceColumns:
        return advice_columns(facts, initial, final)

    def _framed_answer(self, item: Item, display: str, choice: str) -> str:
        """The answer the trial is framed on: the model's own, except under answer-wrong."""
        if display != "answer-wrong" or choice != item.correct:
            return choice
        wrong = [label for label in item.labels if label != item.correct]
        return pick_uniform(wrong, item.item_id, f"answer-wrong|{self.seed}")

    def _advised(self, item: Item, condition: Condition, advice: str, framed: str) -> str | None:
        """The label the advisor recommends, relative to the framed answer."""
        key = f"{item.item_id}|{condition.name}"
        return advised_label(advice, framed, item.labels, key, f"opposite|{self.seed}")


def _prompt(messages: tuple[Message, ...], labels: tuple[str, ...]) -> Prompt:
    return Prompt(messages=messages, answer_prefix=prompts.ANSWER_PREFIX, labels=labels)
