"""The facts the advice protocols' prompts state, in structured form (`AdviceFacts`).

`change-of-mind`, `are-you-sure` and `multi-advice` say in words what the model answered, how
that answer is displayed and what advisors recommend. Each prompt carries the same facts as
an `AdviceFacts` (a `harness.types.TurnFacts`): language models ignore it, the simulated
agent (`paradigms.agent.sim_bayes`) reads it instead of the text, the run store keeps its
JSON with every call (`request.situation`), and the trials-table columns are computed from
that JSON (`paradigms.columns`).

The stored JSON is the fields a prompt set, in the order declared here. That order and those
keys are the record layout of every run made so far, so fields are never reordered or
renamed: turn 1 states `stage`, `item_id`, `correct`; a later turn adds the turn-1 answer
(`initial_choice`, `initial_confidence`, `initial_probs`) and the advice, one advisor
(`display`, `advice`, `accuracy`, `advised`, `displayed`) or a sequence (`advisors` too).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from mindshift.harness.paradigm import TurnAnswer
from mindshift.harness.types import Item, TurnFacts

Display = Literal["shown", "hidden", "other", "answer-wrong", "in-context"]
"""How the turn-1 answer appears at the later turn: `shown` (as the model's own), `hidden`
(a placeholder), `other` (attributed to another model), and change-of-mind's controls
`answer-wrong` (a wrong answer displayed as the model's own) and `in-context` (the
conversation replayed, the answer as the model's own assistant turn)."""

AdviceKind = Literal["same", "opposite", "neutral"]
"""An advisor's direction relative to the answer the trial is framed on (`displayed`)."""

OWN_DISPLAYS: tuple[Display, ...] = ("shown", "answer-wrong", "in-context")
"""Displays that present an answer as the model's own (choice support acts on them)."""


class Advisor(BaseModel):
    """One advisor of a sequence (`multi-advice`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    advice: AdviceKind
    """Its direction, relative to the answer the trial is framed on."""
    accuracy: float
    """Its stated accuracy, in [0.5, 1]."""
    advised: str | None
    """The label it recommends; None for neutral advice."""


class AdviceFacts(TurnFacts):
    """What a turn of an advice protocol states. Turn 1 sets the first three fields only."""

    stage: int
    """The turn (1: the question alone; 2: the question again, with advice)."""
    item_id: str
    """The item (the simulated agent's knowledge is per item)."""
    correct: str
    """The label of the correct option."""
    initial_choice: str | None = None
    """The turn-1 answer (label)."""
    initial_confidence: float | None = None
    """Its turn-1 probability; None without a confidence readout."""
    initial_probs: dict[str, float] | None = None
    """The whole turn-1 distribution, label -> probability (K options need it); None without
    a readout."""
    display: Display | None = None
    """How the turn-1 answer is displayed (see `Display`)."""
    advice: AdviceKind | None = None
    """The one advisor's direction; None when the turn has a sequence of `advisors`."""
    accuracy: float | None = None
    """The one advisor's stated accuracy (or, for a user's pushback, the implied one)."""
    advised: str | None = None
    """The label the one advisor recommends; None for neutral advice or a sequence."""
    advisors: tuple[Advisor, ...] | None = None
    """A sequence of advisors instead of one (`multi-advice`); left unset (and so absent from
    the stored JSON) by the protocols of one advisor."""
    displayed: str | None = None
    """The label displayed as the turn-1 answer, which the trial is framed on; None when
    hidden. It differs from `initial_choice` under `answer-wrong`."""

    @classmethod
    def initial(cls, item: Item) -> AdviceFacts:
        """The facts of turn 1: the item and its correct label."""
        return cls(stage=1, item_id=item.item_id, correct=item.correct)

    @classmethod
    def followup(
        cls,
        item: Item,
        initial: TurnAnswer,
        *,
        display: Display,
        advice: AdviceKind | None,
        accuracy: float | None,
        advised: str | None,
        displayed: str | None,
        advisors: tuple[Advisor, ...] | None = None,
    ) -> AdviceFacts:
        """The facts of turn 2: the item, its turn-1 answer, and the advice given.

        `advisors` is stored only when given, so the records of the one-advisor protocols
        keep the keys they always had.
        """
        facts: dict[str, object] = {
            "stage": 2,
            "item_id": item.item_id,
            "correct": item.correct,
            "initial_choice": initial.choice,
            "initial_confidence": initial.confidence,
            "initial_probs": initial.probs,
            "display": display,
            "advice": advice,
            "accuracy": accuracy,
            "advised": advised,
            "displayed": displayed,
        }
        if advisors is not None:
            facts["advisors"] = advisors
        return cls.model_validate(facts)
