"""`sequential-advice`: one advisor per turn, an answer and a confidence after each.

The model answers (turn 1); then advisors speak one at a time, each with its own stated
accuracy and direction, and the model answers after each: turn k + 1 follows advisor k, so a
sequence of n advisors is n + 1 turns. Sequences are written as in `multi-advice`
(["same@0.7", "opposite@0.9"]) and named the same way, one condition per display and
sequence. As there, a direction is relative to the turn-1 answer: every advisor's
recommendation is fixed when the trial starts, whatever the model answers in between (so the
advice does not chase the model), and an opposite advisor names one of the other options,
uniformly and seeded per item, condition and advisor.

How the earlier turns reach turn k + 1 (`displays`, each a condition):
- `in-context` (the default): the conversation is replayed, the question, the model's answer
  as its own assistant turn, advisor 1, its next answer, ..., advisor k. Hearing advice one
  piece at a time within one conversation is what this protocol adds to `multi-advice`.
- `shown`: one fresh message states the question, the model's turn-1 answer, then each
  advisor heard with the answer the model gave after it, up to advisor k.
- `hidden`: that message with every earlier answer replaced by the placeholder: the model
  hears the advisors but not its own answers (no choice support; the cleanest comparison with
  the Bayes baseline, as in the paper's hidden display).
The conversation and messages are rebuilt from the item and the earlier turns' choices (the
same words those turns asked, plus the answers given), so the dry-run estimate, whose
stand-in answers carry no prompt, sizes the later turns too.

The Bayes baseline per turn is the ideal observer who starts from the turn-1 confidence and
has heard advisors 1..k (for two options logit(post) = logit(c) + sum_j s_j logit(a_j)). The
facts at turn k + 1 (`AdviceFacts`) state the turn-1 answer as the initial one and the first k
advisors, so the simulated agent's turn-(k + 1) answer is its update from its turn-1 belief
under all the advice so far; the trials table's `advisors` column (`AdviceColumns`) holds the
same k advisors, from which the analysis's sequence baseline gives the posterior after k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mindshift.harness.paradigm import Condition, Paradigm, StagePrompt, TurnAnswer
from mindshift.harness.types import Item, JsonValue, Message, Prompt
from mindshift.paradigms.advice import advised_label
from mindshift.paradigms.change_of_mind import prompts
from mindshift.paradigms.columns import AdviceColumns, advice_columns
from mindshift.paradigms.domains import check_domain, domain_items
from mindshift.paradigms.facts import AdviceFacts, Advisor
from mindshift.paradigms.multi_advice import ADVISOR_LINE, name_of

SequenceDisplay = Literal["in-context", "shown", "hidden"]
"""How the model's earlier answers reach a later turn (see the module docstring)."""

MAX_ADVISORS = 10
LATER_ANSWER_LINE = "Your answer after that advice was: {answer}"
"""In the `shown` and `hidden` messages, after each advisor but the last one heard."""


class SequentialAdviceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    domain: str = "latitude"
    items: int = Field(default=100, ge=1, le=30000)
    difficulty: str = "standard"
    displays: list[SequenceDisplay] = Field(default=["in-context"], min_length=1)
    """How earlier answers are carried to later turns, one condition each."""
    sequences: list[list[str]] = Field(
        default=[["same@0.7", "opposite@0.9"], ["opposite@0.9", "same@0.7"]], min_length=1
    )
    """Advisors in the order they speak, "advice@accuracy" each; one condition each."""

    _domain = field_validator("domain")(check_domain)

    @field_validator("displays")
    @classmethod
    def _distinct(cls, displays: list[SequenceDisplay]) -> list[SequenceDisplay]:
        if len(set(displays)) != len(displays):
            raise ValueError("a display may appear only once (each one is a condition)")
        return displays

    @field_validator("sequences")
    @classmethod
    def _valid(cls, sequences: list[list[str]]) -> list[list[str]]:
        names = [name_of(sequence) for sequence in sequences]  # raises on a bad step
        if min(map(len, sequences)) == 0 or len(set(names)) != len(names):
            raise ValueError("every sequence needs an advisor, and no sequence may repeat")
        if max(map(len, sequences)) > MAX_ADVISORS:
            raise ValueError(f"a sequence may have at most {MAX_ADVISORS} advisors (one per turn)")
        return sequences


def _steps(sequence: str) -> list[tuple[str, float]]:
    """(advice, accuracy) of each advisor of a condition's `sequence` factor, which
    `name_of` wrote from validated steps ("same@0.70+opposite@0.90")."""
    return [
        (advice, float(accuracy))
        for advice, _, accuracy in (step.partition("@") for step in sequence.split("+"))
    ]


def _advisor_line(n: int, advisor: Advisor) -> str:
    says = f"recommends answer {advisor.advised}" if advisor.advised else "makes no recommendation"
    return ADVISOR_LINE.format(n=n, accuracy=round(100 * advisor.accuracy), says=says)


class SequentialAdvice(Paradigm):
    name = "sequential-advice"
    Settings = SequentialAdviceSettings
    Facts = AdviceFacts
    Columns = AdviceColumns
    settings: SequentialAdviceSettings

    def items(self) -> Sequence[Item]:
        s = self.settings
        return domain_items(s.domain, s.items, s.difficulty, self.seed)

    def conditions(self) -> Sequence[Condition]:
        return [
            Condition(f"{display}/{name_of(seq)}", {"display": display, "sequence": name_of(seq)})
            for display in self.settings.displays
            for seq in self.settings.sequences
        ]

    def turns(self, condition: Condition) -> int:
        return 1 + len(_steps(str(condition.factors["sequence"])))

    def advisors(self, item: Item, condition: Condition, initial: str) -> tuple[Advisor, ...]:
        """Every advisor of the condition's sequence, relative to the turn-1 answer."""
        advisors = []
        for n, (advice, accuracy) in enumerate(_steps(str(condition.factors["sequence"])), 1):
            key = f"{item.item_id}|{condition.name}|{n}"
            advised = advised_label(advice, initial, item.labels, key, f"sequential|{self.seed}")
            advisors.append(
                Advisor.model_validate({"advice": advice, "accuracy": accuracy, "advised": advised})
            )
        return tuple(advisors)

    def initial_prompt(self, item: Item) -> StagePrompt:
        text = prompts.initial_message(item.question, item.labels, item.options)
        return StagePrompt(prompts.user_prompt(text, item.labels), AdviceFacts.initial(item))

    def turn_prompt(
        self, item: Item, condition: Condition, turn: int, earlier: Sequence[TurnAnswer]
    ) -> StagePrompt:
        last = self.turns(condition)
        if not 2 <= turn <= last or len(earlier) != turn - 1:
            raise ValueError(
                f"sequential-advice turn {turn} of {last} needs the answers of the {turn - 1} "
                f"turns before it; got {len(earlier)}"
            )
        display: SequenceDisplay = condition.factors["display"]
        first = earlier[0]
        heard = self.advisors(item, condition, first.choice)[: turn - 1]
        if display == "in-context":
            messages = self._conversation(item, heard, earlier)
        else:
            messages = (Message("user", self._message(item, display, heard, earlier)),)
        facts = AdviceFacts.followup(
            item, first, display=display, advice=None, accuracy=None, advised=None,
            advisors=heard, displayed=None if display == "hidden" else first.choice,
        ).model_copy(update={"stage": turn})  # fmt: skip
        return StagePrompt(Prompt(messages, prompts.ANSWER_PREFIX, item.labels), facts)

    @staticmethod
    def _conversation(
        item: Item, heard: Sequence[Advisor], earlier: Sequence[TurnAnswer]
    ) -> tuple[Message, ...]:
        """The `in-context` replay: the question, then each answer and the advisor after it."""
        messages = [
            Message("user", prompts.initial_message(item.question, item.labels, item.options))
        ]
        for n, (advisor, answer) in enumerate(zip(heard, earlier, strict=True), 1):
            messages.append(Message("assistant", f"{prompts.ANSWER_PREFIX} {answer.choice}"))
            messages.append(
                Message("user", f"{_advisor_line(n, advisor)}\n\n{prompts.RECONSIDER_RULE}")
            )
        return tuple(messages)

    @staticmethod
    def _message(
        item: Item,
        display: SequenceDisplay,
        heard: Sequence[Advisor],
        earlier: Sequence[TurnAnswer],
    ) -> str:
        """The fresh `shown` / `hidden` message: the answers so far and the advisors between."""

        def stated(answer: TurnAnswer) -> str:
            return prompts.HIDDEN_PLACEHOLDER if display == "hidden" else answer.choice

        lines = [prompts.DISPLAY_LINES[display].format(answer=earlier[0].choice)]
        for n, (advisor, after) in enumerate(zip(heard, [*earlier[1:], None], strict=True), 1):
            lines.append(_advisor_line(n, advisor))
            if after is not None:
                lines.append(LATER_ANSWER_LINE.format(answer=stated(after)))
        block = prompts.question_block(item.question, item.labels, item.options)
        return "\n\n".join([prompts.INSTRUCTION, block, "\n".join(lines), prompts.RECONSIDER_RULE])

    @classmethod
    def trial_columns(
        cls, facts: Mapping[str, JsonValue], initial: TurnAnswer, final: TurnAnswer
    ) -> AdviceColumns:
        return advice_columns(facts, initial, final)
