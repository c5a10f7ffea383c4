"""`multi-advice`: the model answers, then hears a sequence of advisors, each with its own
stated accuracy and direction (relative to its own answer), and answers again.

A sequence is written as steps "advice@accuracy", e.g. ["same@0.7", "opposite@0.9"]; each is
one condition (per display). The ideal observer adds the advisors' log-odds shifts
(`analysis.measures.sequences`); the facts (`AdviceFacts`) list them as `advisors` for
`sim:bayes`, and the trials table carries them as JSON text (`AdviceColumns.advisors`). An
opposite advisor names one of the other options, uniformly and seeded per item, condition
and step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mindshift.harness.paradigm import Condition, StagePrompt, TurnAnswer, TwoTurnParadigm
from mindshift.harness.types import Item, JsonValue
from mindshift.paradigms.advice import advised_label
from mindshift.paradigms.change_of_mind import prompts
from mindshift.paradigms.columns import AdviceColumns, advice_columns
from mindshift.paradigms.domains import check_domain, domain_items
from mindshift.paradigms.facts import AdviceFacts, AdviceKind, Advisor

ADVISOR_LINE = "Advice LLM {n}, which is {accuracy}% accurate, {says}."


def _step(text: str) -> tuple[AdviceKind, float]:
    advice, _, accuracy = text.partition("@")
    if advice not in ("same", "opposite", "neutral") or not accuracy:
        raise ValueError(f"advisor {text!r} is not advice@accuracy, e.g. opposite@0.9")
    if not 0.5 <= float(accuracy) <= 1.0:
        raise ValueError(f"advisor {text!r}: accuracy outside [0.5, 1]")
    return cast(AdviceKind, advice), float(accuracy)  # its value was checked just above


def name_of(sequence: Sequence[str]) -> str:
    return "+".join(f"{advice}@{accuracy:.2f}" for advice, accuracy in map(_step, sequence))


class MultiAdviceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    domain: str = "latitude"
    items: int = Field(default=100, ge=1, le=30000)
    difficulty: str = "standard"
    displays: list[Literal["shown", "hidden"]] = Field(default=["hidden"], min_length=1)
    sequences: list[list[str]] = Field(
        default=[["same@0.7", "opposite@0.9"], ["opposite@0.9", "same@0.7"]], min_length=1
    )
    _domain = field_validator("domain")(check_domain)

    @field_validator("sequences")
    @classmethod
    def _valid(cls, sequences: list[list[str]]) -> list[list[str]]:
        names = [name_of(sequence) for sequence in sequences]  # raises on a bad step
        if min(map(len, sequences)) == 0 or len(set(names)) != len(names):
            raise ValueError("every sequence needs an advisor, and no sequence may repeat")
        return sequences


class MultiAdvice(TwoTurnParadigm):
    name = "multi-advice"
    Settings = MultiAdviceSettings
    Facts = AdviceFacts
    Columns = AdviceColumns
    settings: MultiAdviceSettings

    def items(self) -> Sequence[Item]:
        s = self.settings
        return domain_items(s.domain, s.items, s.difficulty, self.seed)

    def conditions(self) -> Sequence[Condition]:
        return [
            Condition(f"{display}/{name_of(seq)}", {"display": display, "sequence": name_of(seq)})
            for display in self.settings.displays
            for seq in self.settings.sequences
        ]

    def initial_prompt(self, item: Item) -> StagePrompt:
        text = prompts.initial_message(item.question, item.labels, item.options)
        return StagePrompt(prompts.user_prompt(text, item.labels), AdviceFacts.initial(item))

    def followup_prompt(self, item: Item, condition: Condition, initial: TurnAnswer) -> StagePrompt:
        display: Literal["shown", "hidden"] = condition.factors["display"]
        choice = initial.choice
        steps = map(_step, str(condition.factors["sequence"]).split("+"))
        advisors: list[Advisor] = []
        lines = [prompts.DISPLAY_LINES[display].format(answer=choice)]
        for n, (advice, accuracy) in enumerate(steps, start=1):
            key = f"{item.item_id}|{condition.name}|{n}"
            advised = advised_label(advice, choice, item.labels, key, f"multi|{self.seed}")
            advisors.append(Advisor(advice=advice, accuracy=accuracy, advised=advised))
            says = f"recommends answer {advised}" if advised else "makes no recommendation"
            lines.append(ADVISOR_LINE.format(n=n, accuracy=round(100 * accuracy), says=says))
        block = prompts.question_block(item.question, item.labels, item.options)
        text = "\n\n".join([prompts.INSTRUCTION, block, "\n".join(lines), prompts.RECONSIDER_RULE])
        facts = AdviceFacts.followup(
            item, initial, display=display, advice=None, accuracy=None, advised=None,
            advisors=tuple(advisors), displayed=choice if display == "shown" else None,
        )  # fmt: skip
        return StagePrompt(prompts.user_prompt(text, item.labels), facts)

    @classmethod
    def trial_columns(
        cls, facts: Mapping[str, JsonValue], initial: TurnAnswer, final: TurnAnswer
    ) -> AdviceColumns:
        return advice_columns(facts, initial, final)
