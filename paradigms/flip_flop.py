"""`flip-flop`: the same challenge, round after round (after Laban et al. 2023, "Are You Sure?
Challenging LLMs Leads to Performance Drops in the FlipFlop Experiment").

The model answers (turn 1). A user then challenges that answer with one bare wording ("Are you
sure?"), and the model answers again; the same challenge comes back `rounds` times, so an item
has `rounds + 1` turns. Each round replays the whole conversation so far: the question, the
model's answer as its own assistant turn, the challenge, its next answer, ... then the
challenge again. Confidence is read at every turn. Each challenge wording is a condition.
Laban et al. challenge once; repeating a challenge that carries no information asks whether
the answer keeps drifting under pressure alone (an ideal observer never moves).

The conversation is rebuilt from the item and the earlier turns' choices, word for word what
those turns asked plus the answers given, rather than copied from the stored prompts: the same
messages either way, and the dry-run estimate, whose stand-in answers carry no prompt, sizes
the later turns too. `rounds` is not part of the trial ids, so raising it on a finished run
resumes into the new rounds only.

For the simulated agent a round is are-you-sure's bare challenge (`AdviceFacts`): its own
answer shown, neutral advice, and, as "initial" answer, the answer of the turn just before
(with that turn's probabilities), so the agent updates from its latest belief. Those facts
are the agent's reading of a challenge, not a display x advice x accuracy condition, so the
trials table leaves those columns empty and adds the round's own (`FlipFlopColumns`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mindshift.harness.paradigm import Condition, Paradigm, StagePrompt, TurnAnswer
from mindshift.harness.types import Item, JsonValue, Message, Prompt
from mindshift.paradigms.are_you_sure import CHALLENGES
from mindshift.paradigms.change_of_mind.prompts import ANSWER_PREFIX, initial_message, user_prompt
from mindshift.paradigms.columns import AdviceColumns, probability
from mindshift.paradigms.domains import check_domain, domain_items
from mindshift.paradigms.facts import AdviceFacts

BARE_CHALLENGES: dict[str, str] = {
    name: text for name, text in CHALLENGES.items() if "{other}" not in text
}
"""are-you-sure's challenges that name no option (the same wordings, so round 1 of a
flip-flop trial is that challenge's are-you-sure prompt). A challenge that names another
option has a direction, which repeating would have to re-draw each round: not this protocol."""

MAX_ROUNDS = 10


class FlipFlopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    domain: str = "latitude"
    items: int = Field(default=100, ge=1, le=30000)
    difficulty: str = "standard"
    challenges: list[str] = Field(default_factory=lambda: list(BARE_CHALLENGES), min_length=1)
    """The challenge wordings, one condition each (see `BARE_CHALLENGES`)."""
    rounds: int = Field(default=3, ge=1, le=MAX_ROUNDS)
    """How many times the challenge is repeated (turns 2 .. rounds + 1)."""

    _domain = field_validator("domain")(check_domain)

    @field_validator("challenges")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        if unknown := sorted(set(names) - set(BARE_CHALLENGES)):
            raise ValueError(
                f"unknown challenges {unknown} (flip-flop repeats a challenge that names no "
                f"option: {sorted(BARE_CHALLENGES)})"
            )
        if len(set(names)) != len(names):
            raise ValueError("a challenge may appear only once (each one is a condition)")
        return names


class FlipFlopColumns(AdviceColumns):
    """The advice columns (display, advice and accuracy empty: the conditions are challenge
    wordings; the trial framed on its turn-1 answer, as the engine's columns are), plus what
    happened in this round relative to the answer it challenged."""

    round: int
    """1 for the first challenge (turn 2), up to `rounds`."""
    previous_choice: str
    """The answer this round challenged (the turn before's)."""
    previous_confidence: float
    """Its probability at the turn before; NaN when unknown."""
    final_prob_previous: float
    """This turn's probability of that answer; NaN when unknown."""
    flipped: bool
    """Whether this turn's answer differs from the turn before's (the engine's
    `changed_mind` compares with turn 1's)."""


class FlipFlop(Paradigm):
    name = "flip-flop"
    Settings = FlipFlopSettings
    Facts = AdviceFacts
    Columns = FlipFlopColumns
    settings: FlipFlopSettings

    def items(self) -> Sequence[Item]:
        s = self.settings
        return domain_items(s.domain, s.items, s.difficulty, self.seed)

    def conditions(self) -> Sequence[Condition]:
        return [Condition(name, {"challenge": name}) for name in self.settings.challenges]

    def turns(self, condition: Condition) -> int:
        return self.settings.rounds + 1

    def initial_prompt(self, item: Item) -> StagePrompt:
        text = initial_message(item.question, item.labels, item.options)
        return StagePrompt(user_prompt(text, item.labels), AdviceFacts.initial(item))

    def turn_prompt(
        self, item: Item, condition: Condition, turn: int, earlier: Sequence[TurnAnswer]
    ) -> StagePrompt:
        if not 2 <= turn <= self.settings.rounds + 1 or len(earlier) != turn - 1:
            raise ValueError(
                f"flip-flop turn {turn} of {self.settings.rounds + 1} needs the answers of "
                f"the {turn - 1} turns before it; got {len(earlier)}"
            )
        challenge = BARE_CHALLENGES[condition.name]
        messages = [Message("user", initial_message(item.question, item.labels, item.options))]
        for answer in earlier:
            messages.append(Message("assistant", f"{ANSWER_PREFIX} {answer.choice}"))
            messages.append(Message("user", challenge))
        previous = earlier[-1]
        facts = AdviceFacts.followup(
            item, previous, display="shown", advice="neutral", accuracy=None, advised=None,
            displayed=previous.choice,
        ).model_copy(update={"stage": turn})  # fmt: skip
        return StagePrompt(Prompt(tuple(messages), ANSWER_PREFIX, item.labels), facts)

    @classmethod
    def trial_columns(
        cls, facts: Mapping[str, JsonValue], initial: TurnAnswer, final: TurnAnswer
    ) -> FlipFlopColumns:
        stated = AdviceFacts.model_validate(facts)
        previous = str(stated.initial_choice)
        confidence = stated.initial_confidence
        return FlipFlopColumns(
            display=None,
            advice=None,
            accuracy=None,
            advised=None,
            initial_prob_advised=math.nan,
            displayed_choice=initial.choice,
            initial_prob_displayed=probability(initial, initial.choice),
            final_prob_displayed=probability(final, initial.choice),
            advisors=None,
            round=stated.stage - 1,
            previous_choice=previous,
            previous_confidence=math.nan if confidence is None else confidence,
            final_prob_previous=probability(final, previous),
            flipped=final.choice != previous,
        )
