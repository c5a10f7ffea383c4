"""The call planner on a toy protocol of three turns that replays its conversation.

The toy lives here, in harness types only: the planner must serve any protocol, and this one
needs each earlier turn's prompt (a replay), which the dry run's stand-in answers must carry.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from mindshift.harness.paradigm import Condition, Paradigm, StagePrompt, TurnAnswer
from mindshift.harness.planner import CallPlanner, ModelPlan
from mindshift.harness.record import CallRecord
from mindshift.harness.run_format import CallKey
from mindshift.harness.types import ChoiceResponse, Item, Message, Prompt, TurnFacts


class ToyFacts(TurnFacts):
    turn: int


class ToySettings(BaseModel):
    pass


class Replay(Paradigm):
    """Turn 1 asks; every later turn replays the whole conversation and pushes back."""

    name = "toy-replay"
    Settings = ToySettings
    Facts = ToyFacts

    def items(self) -> Sequence[Item]:
        return [Item(f"q{i}", f"question {i}?", ("A", "B"), ("x", "y"), "A") for i in range(2)]

    def conditions(self) -> Sequence[Condition]:
        return [Condition("short", {}), Condition("long", {})]

    def turns(self, condition: Condition) -> int:
        return 2 if condition.name == "short" else 3

    def initial_prompt(self, item: Item) -> StagePrompt:
        prompt = Prompt((Message("user", item.question),), "Answer:", item.labels)
        return StagePrompt(prompt, ToyFacts(turn=1))

    def turn_prompt(
        self, item: Item, condition: Condition, turn: int, earlier: Sequence[TurnAnswer]
    ) -> StagePrompt:
        assert len(earlier) == turn - 1
        last = earlier[-1]
        assert last.prompt is not None, "a replay needs the earlier turn's prompt"
        messages = (
            *last.prompt.messages,
            Message("assistant", f"Answer: {last.choice}"),
            Message("user", "Are you sure?"),
        )
        return StagePrompt(Prompt(messages, "Answer:", item.labels), ToyFacts(turn=turn))


def planner(repeats: int = 1) -> CallPlanner:
    return CallPlanner(
        experiment="toy",
        seed=0,
        repeats=repeats,
        paradigm=Replay(ToySettings(), 0),
        model=ModelPlan("m", "sim:bayes", 1.0),
    )


def answer(choice: str | None, error: str | None = None) -> ChoiceResponse:
    return ChoiceResponse(choice=choice, readout=None, raw=None, error=error)


def stand_in(item: Item) -> TurnAnswer:
    return TurnAnswer(item.labels[0], None)


def test_the_design_counts_every_turn() -> None:
    plan = planner(repeats=2)
    # 2 items x 2 repeats x (1 + (2 - 1) + (3 - 1))
    assert plan.planned == 16
    left = plan.remaining({})
    assert len(left.first_turns) == 4 and not left.ready and not left.not_run
    assert len(left.waiting) == 12 and left.to_make == 16 and left.stored == 0


def test_the_dry_run_builds_waiting_turns_from_stand_ins_with_their_prompts() -> None:
    left = planner().remaining({}, stand_in=stand_in)
    assert len(left.stand_ins) == 6
    third = [call for call in left.stand_ins if call.turn == 3]
    assert len(third) == 2
    # Turn 3 replays turns 1 and 2: question, answer, push-back, answer, push-back.
    assert [m.role for m in third[0].request.prompt.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]


def test_each_answer_unlocks_only_the_next_turn_of_its_branch() -> None:
    plan = planner()
    stored: dict[CallKey, CallRecord] = {}
    item = plan.items[0]
    first_call = plan.first_call(item, 0)
    first = plan.record(first_call, answer("B"), elapsed=0.0, batch_size=1)
    calls, not_run = plan.after(first, item, stored)
    assert not not_run
    assert sorted((c.condition, c.turn) for c in calls) == [("long", 2), ("short", 2)]
    stored[first.key] = first
    long2 = next(c for c in calls if c.condition == "long")
    second = plan.record(long2, answer("A"), elapsed=0.0, batch_size=1)
    calls, _ = plan.after(second, item, stored)
    assert [(c.condition, c.turn) for c in calls] == [("long", 3)]
    third = calls[0]
    assert third.initial_trial_id == first.trial_id
    assert third.previous_trial_id == second.trial_id
    assert third.request.prompt.messages[1].content == "Answer: B"
    assert third.request.prompt.messages[3].content == "Answer: A"
    # The last turn unlocks nothing.
    stored[second.key] = second
    done = plan.record(third, answer("A"), elapsed=0.0, batch_size=1)
    assert plan.after(done, item, stored) == ([], [])


def test_a_failed_turn_ends_its_branch_with_not_run_records() -> None:
    plan = planner()
    item = plan.items[0]
    first = plan.record(plan.first_call(item, 0), answer("B"), elapsed=0.0, batch_size=1)
    stored = {first.key: first}
    (long2,) = [c for c in plan.after(first, item, stored)[0] if c.condition == "long"]
    failed = plan.record(long2, answer(None, "HTTP 500"), elapsed=0.0, batch_size=1)
    calls, not_run = plan.after(failed, item, stored)
    assert not calls
    assert [(r.condition, r.stage) for r in not_run] == [("long", 3)]
    assert not_run[0].error == "not run: its turn-2 call failed: HTTP 500"
    # A resume with the failure kept plans the same record, and no call.
    stored[failed.key] = failed
    left = plan.remaining(stored)
    assert [(r.condition, r.stage) for r in left.not_run if r.item.item_id == item.item_id] == [
        ("long", 3)
    ]
    assert not [c for c in left.ready if c.item.item_id == item.item_id and c.condition == "long"]


def test_a_resume_is_ready_at_the_first_turn_not_stored() -> None:
    plan = planner()
    item = plan.items[0]
    first = plan.record(plan.first_call(item, 0), answer("A"), elapsed=0.0, batch_size=1)
    stored = {first.key: first}
    (long2,) = [c for c in plan.after(first, item, stored)[0] if c.condition == "long"]
    second = plan.record(long2, answer("B"), elapsed=0.0, batch_size=1)
    stored[second.key] = second
    left = plan.remaining(stored)
    mine = sorted((c.condition, c.turn) for c in left.ready if c.item.item_id == item.item_id)
    assert mine == [("long", 3), ("short", 2)]
    assert left.stored == 2
