"""What a paradigm (a prompting protocol) gives the runner: items, conditions, turns, prompts.

A paradigm asks each item in turns. Turn 1 asks it once (per repeat) and is shared by every
condition. Under each condition the item is then asked again, turn after turn (a two-turn
protocol has one later turn; `turns` says how many), each turn built from the stored answers
of the turns before it: a fresh stateless prompt or a replayed conversation, as the protocol
chooses. A paradigm may also hold out calibration items, asked at turn 1 only, whose answers
calibrate the confidence readout (temperature scaling) without entering any later measure.

A paradigm owns its vocabulary: the factors of its conditions, the facts each turn's prompt
states (`Facts`, read by simulated agents), and the columns it adds to trials.parquet
(`trial_columns`). The engine names none of them. Paradigms build prompts from harness types
only and never see a backend. Paradigms outside this repository register through the
entry-point group `mindshift.paradigms` (docs/protocols.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mindshift.harness.record import CallRecord
from mindshift.harness.types import Item, JsonValue, Prompt, TurnFacts


@dataclass(frozen=True)
class Condition:
    """One stage-2 condition: a name (part of the trial id) and its factor values."""

    name: str
    factors: dict[str, JsonValue]


@dataclass(frozen=True)
class TurnAnswer:
    """A stored answer of an earlier turn, as the prompts of later turns are built from it."""

    choice: str
    probs: dict[str, float] | None
    """Option probabilities of that turn; None for a choice-only model or a censored readout."""
    turn: int = 1
    prompt: Prompt | None = None
    """What that turn asked (a protocol that replays the conversation needs it)."""

    @property
    def confidence(self) -> float | None:
        """Probability of the chosen option, when known."""
        return None if self.probs is None else self.probs[self.choice]

    @classmethod
    def of(cls, record: CallRecord) -> TurnAnswer:
        """A stored answer (a successful call's record)."""
        return cls(
            choice=str(record.choice),
            probs=record.probs,
            turn=record.stage,
            prompt=None if record.request is None else record.request.prompt,
        )


InitialAnswer = TurnAnswer
"""The turn-1 answer (the name two-turn protocols use)."""


@dataclass(frozen=True)
class StagePrompt:
    """A turn's prompt plus the structured facts it states (read by simulated agents)."""

    prompt: Prompt
    facts: TurnFacts


class TrialColumns(BaseModel):
    """Columns a paradigm adds to each row of trials.parquet (one row per later turn).

    A paradigm subclasses it with typed fields; each field becomes a column of that name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Paradigm(ABC):
    """A protocol of turns. Subclasses set `name`, `Settings`, `Facts` and build the prompts."""

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]
    """Pydantic model of the `[paradigm]` table (extra keys forbidden)."""
    Facts: ClassVar[type[TurnFacts]]
    """The schema of the facts its prompts state (`StagePrompt.facts`), stored with each call."""
    Columns: ClassVar[type[TrialColumns] | None] = None
    """The schema of the columns it adds to trials.parquet (None: none)."""

    def __init__(self, settings: Any, seed: int) -> None:
        self.settings = settings
        self.seed = seed

    @abstractmethod
    def items(self) -> Sequence[Item]:
        """The items of this experiment, generated deterministically from the seed."""

    def calibration_items(self) -> Sequence[Item]:
        """Held-out items asked at turn 1 only, to calibrate the confidence readout.

        They must be disjoint from `items()` (a question used for calibration and for the
        main measures would be counted twice). The default: none.
        """
        return ()

    @abstractmethod
    def conditions(self) -> Sequence[Condition]:
        """Every condition of the later turns, in a fixed order."""

    def turns(self, condition: Condition) -> int:
        """How many turns an item has under `condition`, turn 1 included (at least 2)."""
        return 2

    @abstractmethod
    def initial_prompt(self, item: Item) -> StagePrompt:
        """The turn-1 prompt of an item."""

    @abstractmethod
    def turn_prompt(
        self, item: Item, condition: Condition, turn: int, earlier: Sequence[TurnAnswer]
    ) -> StagePrompt:
        """The prompt of turn `turn` (2 or later) of an item under a condition, built from the
        stored answers of its earlier turns: `earlier[0]` is turn 1, `earlier[-1]` turn - 1."""

    @classmethod
    def trial_columns(
        cls, facts: Mapping[str, JsonValue], initial: TurnAnswer, final: TurnAnswer
    ) -> TrialColumns | None:
        """This paradigm's columns of one trials.parquet row: `facts` is the stored JSON of
        the row's turn (parse it with `Facts`), `initial` its turn-1 answer, `final` the
        row's own. None when the paradigm adds no columns."""
        return None


class TwoTurnParadigm(Paradigm):
    """A protocol of two turns: the answer, then one later turn per condition."""

    @abstractmethod
    def followup_prompt(self, item: Item, condition: Condition, initial: TurnAnswer) -> StagePrompt:
        """The turn-2 prompt of an item under a condition, from its stored turn-1 answer."""

    def turn_prompt(
        self, item: Item, condition: Condition, turn: int, earlier: Sequence[TurnAnswer]
    ) -> StagePrompt:
        if turn != 2:
            raise ValueError(f"{self.name} has two turns; turn {turn} was asked for")
        return self.followup_prompt(item, condition, earlier[0])
