"""The call planner: every call of one model's share of an experiment, and what is left of it.

One planner serves the runner, the batch waves and the dry-run estimate, so the three agree
on which calls a design holds, how they are keyed, and which of them a run still has to
make. Calls form a tree per item and repeat: turn 1 (shared by every condition, condition
`initial`), then under each condition turns 2, 3, ... each built from the stored answers of
the turns before it. A calibration item has turn 1 only (condition `calibration`, asked once
whatever `repeats` says: temperature scaling uses its option probabilities, which a repeat of
the same prompt would not change).

A later turn is planned only from stored answers: its prompt depends on nothing but the
records of its earlier turns, so a killed run resumes to the very calls it would have made.
A failed turn ends its branch: each turn after it gets a failure record "not run: ..." so that
every planned call ends with exactly one record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mindshift.harness.paradigm import Condition, Paradigm, StagePrompt, TurnAnswer
from mindshift.harness.record import CallRecord, StoredRequest
from mindshift.harness.run_format import CallKey
from mindshift.harness.trial_ids import (
    CALIBRATION_CONDITION,
    INITIAL_CONDITION,
    seed_from_id,
    trial_id,
)
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, Item, JsonValue, Prompt


@dataclass(frozen=True)
class ModelPlan:
    """What the planner needs of one model entry."""

    model_id: str
    spec: str
    temperature: float
    readout: str | None = None
    """How its trials are read (stored in each record; `harness.readouts`)."""


@dataclass(frozen=True)
class PlannedCall:
    """A call to make, with what its record must say besides the response."""

    request: ChoiceRequest
    item: Item
    condition: str
    factors: dict[str, JsonValue]
    repeat: int
    initial_trial_id: str | None
    previous_trial_id: str | None = None

    @property
    def key(self) -> CallKey:
        return (self.request.trial_id, self.request.stage)

    @property
    def turn(self) -> int:
        return self.request.stage


@dataclass
class Remaining:
    """What a run still has to do for one model, given the records already stored."""

    planned: int = 0
    """Every call of the design."""
    first_turns: list[PlannedCall] = field(default_factory=list)
    """Turn-1 calls not stored (main items first, then calibration items)."""
    ready: list[PlannedCall] = field(default_factory=list)
    """Later turns not stored whose earlier turns are all stored answers."""
    waiting: list[tuple[Item, Condition, int, int]] = field(default_factory=list)
    """Later turns not stored that wait on an earlier turn not stored yet (item, condition,
    repeat, turn): they are made once that turn is answered."""
    not_run: list[CallRecord] = field(default_factory=list)
    """Failure records for later turns without a record whose earlier turn failed."""
    stand_ins: list[PlannedCall] = field(default_factory=list)
    """With a stand-in answer (the dry-run estimate): the `waiting` turns' calls, built from
    the stand-in where an earlier answer is not stored yet. Not calls to make as they are."""

    @property
    def to_make(self) -> int:
        """Records this run will add: calls, and the "not run" records of failed branches."""
        return len(self.first_turns) + len(self.ready) + len(self.waiting) + len(self.not_run)

    @property
    def stored(self) -> int:
        return self.planned - self.to_make


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CallPlanner:
    """Plans one model's calls of an experiment (a paradigm, a seed, its repeats)."""

    def __init__(
        self,
        *,
        experiment: str,
        seed: int,
        repeats: int,
        paradigm: Paradigm,
        model: ModelPlan,
        items: Sequence[Item] | None = None,
        calibration_items: Sequence[Item] | None = None,
        conditions: Sequence[Condition] | None = None,
    ) -> None:
        """`items`, `calibration_items`, `conditions`: the paradigm's, when the caller has
        them already (generating items can take a while; every model shares them)."""
        self.experiment = experiment
        self.seed = seed
        self.repeats = repeats
        self.paradigm = paradigm
        self.model = model
        self.items = list(paradigm.items() if items is None else items)
        self.calibration_items = list(
            paradigm.calibration_items() if calibration_items is None else calibration_items
        )
        self.conditions = list(paradigm.conditions() if conditions is None else conditions)
        self._turns = {condition.name: paradigm.turns(condition) for condition in self.conditions}
        for condition in self.conditions:
            if self._turns[condition.name] < 2:
                raise ValueError(
                    f"paradigm {paradigm.name!r}: condition {condition.name!r} has "
                    f"{self._turns[condition.name]} turns; a condition needs at least 2"
                )
        self._conditions_by_name = {condition.name: condition for condition in self.conditions}

    # Keys -------------------------------------------------------------------------------

    def trial_id(self, item: Item, condition: str, repeat: int, turn: int) -> str:
        return trial_id(
            experiment=self.experiment,
            seed=self.seed,
            model=self.model.model_id,
            paradigm=self.paradigm.name,
            item=item.item_id,
            condition=condition,
            repeat=repeat,
            stage=turn,
        )

    def turns(self, condition: Condition) -> int:
        return self._turns[condition.name]

    @property
    def planned(self) -> int:
        """Every call of the design for this model."""
        later = sum(turns - 1 for turns in self._turns.values())
        return len(self.items) * self.repeats * (1 + later) + len(self.calibration_items)

    # Calls ------------------------------------------------------------------------------

    def _call(
        self,
        item: Item,
        condition: str,
        factors: dict[str, JsonValue],
        repeat: int,
        turn: int,
        staged: StagePrompt,
        initial_trial_id: str | None,
        previous_trial_id: str | None,
        known_id: str | None = None,
    ) -> PlannedCall:
        tid = known_id or self.trial_id(item, condition, repeat, turn)
        request = ChoiceRequest(
            trial_id=tid,
            stage=turn,
            prompt=staged.prompt,
            temperature=self.model.temperature,
            seed=seed_from_id(tid, "sample"),
            facts=staged.facts,
        )
        return PlannedCall(
            request=request,
            item=item,
            condition=condition,
            factors=factors,
            repeat=repeat,
            initial_trial_id=initial_trial_id,
            previous_trial_id=previous_trial_id,
        )

    def first_call(self, item: Item, repeat: int, *, calibration: bool = False) -> PlannedCall:
        condition = CALIBRATION_CONDITION if calibration else INITIAL_CONDITION
        return self._call(
            item, condition, {}, repeat, 1, self.paradigm.initial_prompt(item), None, None
        )

    def later_call(
        self,
        item: Item,
        condition: Condition,
        repeat: int,
        turn: int,
        earlier: Sequence[TurnAnswer],
        earlier_ids: Sequence[str],
        known_id: str | None = None,
    ) -> PlannedCall:
        """Turn `turn` of an item under `condition`, built from its earlier answers.
        `known_id`: its trial id, when the caller has computed it already (a hash each)."""
        staged = self.paradigm.turn_prompt(item, condition, turn, earlier)
        return self._call(
            item,
            condition.name,
            dict(condition.factors),
            repeat,
            turn,
            staged,
            earlier_ids[0],
            earlier_ids[-1] if turn > 2 else None,
            known_id,
        )

    def record(
        self,
        call: PlannedCall,
        response: ChoiceResponse,
        *,
        elapsed: float,
        batch_size: int,
        batch_id: str | None = None,
    ) -> CallRecord:
        """The record of a finished call."""
        return CallRecord(
            trial_id=call.request.trial_id,
            stage=call.request.stage,
            model=self.model.model_id,
            spec=self.model.spec,
            paradigm=self.paradigm.name,
            item=call.item,
            condition=call.condition,
            factors=call.factors,
            repeat=call.repeat,
            initial_trial_id=call.initial_trial_id,
            previous_trial_id=call.previous_trial_id,
            request=StoredRequest.of(call.request),
            response=response.raw,
            choice=response.choice,
            readout=response.readout,
            usage=response.usage,
            latency_s=response.latency_s or elapsed,
            batch_size=batch_size,
            attempts=response.attempts,
            attempt_errors=tuple(response.attempt_errors),
            error=response.error,
            finished_at=_now(),
            batch_id=batch_id,
            readout_method=self.model.readout,
            readout_detail=response.readout_detail,
        )

    def _not_run(
        self,
        item: Item,
        condition: Condition,
        repeat: int,
        turn: int,
        failed: CallRecord,
        initial_trial_id: str,
    ) -> CallRecord:
        reason = failed.error or "no answer"
        which = "stage-1" if failed.stage == 1 else f"turn-{failed.stage}"
        return CallRecord(
            trial_id=self.trial_id(item, condition.name, repeat, turn),
            stage=turn,
            model=self.model.model_id,
            spec=self.model.spec,
            paradigm=self.paradigm.name,
            item=item,
            condition=condition.name,
            factors=dict(condition.factors),
            repeat=repeat,
            initial_trial_id=initial_trial_id,
            previous_trial_id=(
                self.trial_id(item, condition.name, repeat, turn - 1) if turn > 2 else None
            ),
            error=f"not run: its {which} call failed: {reason}",
            finished_at=_now(),
        )

    # Walking the tree -------------------------------------------------------------------

    def after(
        self, record: CallRecord, item: Item, stored: Mapping[CallKey, CallRecord]
    ) -> tuple[list[PlannedCall], list[CallRecord]]:
        """What a just-finished call makes possible: the calls of the turns it unlocks, and
        the "not run" records of the turns a failure leaves without an answer (each only
        when not stored). `stored` holds the earlier turns; `record` need not be in it."""
        if record.condition == CALIBRATION_CONDITION:
            return [], []
        repeat = record.repeat
        if record.stage == 1:
            branches = self.conditions
        else:
            condition = self._conditions_by_name.get(record.condition)
            branches = [] if condition is None else [condition]
        calls: list[PlannedCall] = []
        not_run: list[CallRecord] = []
        first_id = self.trial_id(item, INITIAL_CONDITION, repeat, 1)
        for condition in branches:
            turn = record.stage + 1
            if turn > self.turns(condition):
                continue
            if record.failed:
                for later in range(turn, self.turns(condition) + 1):
                    tid = self.trial_id(item, condition.name, repeat, later)
                    if (tid, later) not in stored:
                        not_run.append(
                            self._not_run(item, condition, repeat, later, record, first_id)
                        )
                continue
            tid = self.trial_id(item, condition.name, repeat, turn)
            if (tid, turn) in stored:
                continue
            earlier_records = [
                stored.get((self.trial_id(item, condition.name, repeat, k), k))
                for k in range(2, record.stage)
            ]
            if any(one is None or one.failed for one in earlier_records):
                continue  # cannot happen for a tree stored turn by turn; never guess
            answers = [
                *(TurnAnswer.of(one) for one in earlier_records if one is not None),
                TurnAnswer.of(record),
            ]
            ids = [
                *(one.trial_id for one in earlier_records if one is not None),
                record.trial_id,
            ]
            if record.stage > 1:
                first = stored.get((first_id, 1))
                if first is None or first.failed:
                    continue
                answers.insert(0, TurnAnswer.of(first))
                ids.insert(0, first.trial_id)
            calls.append(self.later_call(item, condition, repeat, turn, answers, ids, tid))
        return calls, not_run

    def remaining(
        self,
        stored: Mapping[CallKey, CallRecord],
        stand_in: Callable[[Item], TurnAnswer] | None = None,
    ) -> Remaining:
        """What is left of the design given `stored`. With `stand_in`, later turns that wait
        on unstored answers are also built with that stand-in answer and listed
        (the dry-run estimate sizes their prompts) in `stand_ins`; they are `waiting` either
        way."""
        left = Remaining(planned=self.planned)
        for repeat in range(self.repeats):
            for item in self.items:
                first_call = self.first_call(item, repeat)
                first = stored.get(first_call.key)
                if first is None:
                    left.first_turns.append(first_call)
                for condition in self.conditions:
                    self._walk(item, condition, repeat, first, stored, stand_in, left)
        for item in self.calibration_items:
            call = self.first_call(item, 0, calibration=True)
            if call.key not in stored:
                left.first_turns.append(call)
        return left

    def _walk(
        self,
        item: Item,
        condition: Condition,
        repeat: int,
        first: CallRecord | None,
        stored: Mapping[CallKey, CallRecord],
        stand_in: Callable[[Item], TurnAnswer] | None,
        left: Remaining,
    ) -> None:
        """One branch (an item under a condition): its turns in order, until the first one
        not stored; what follows waits on it (or, after a failure, is not run)."""
        first_id = self.trial_id(item, INITIAL_CONDITION, repeat, 1)
        answers: list[TurnAnswer] = []
        ids: list[str] = [first_id]
        previous = first
        if first is not None and not first.failed:
            answers.append(TurnAnswer.of(first))
        elif first is None and stand_in is not None:
            opening = self.paradigm.initial_prompt(item).prompt
            answers.append(self._standing_in(stand_in, item, 1, opening))
        waiting = first is None
        for turn in range(2, self.turns(condition) + 1):
            tid = self.trial_id(item, condition.name, repeat, turn)
            mine = stored.get((tid, turn))
            if mine is not None and not waiting:
                previous = mine
                if not mine.failed:
                    answers.append(TurnAnswer.of(mine))
                ids.append(tid)
                continue
            if previous is not None and previous.failed:
                left.not_run.append(
                    self._not_run(item, condition, repeat, turn, previous, first_id)
                )
                continue
            if not waiting:
                left.ready.append(self.later_call(item, condition, repeat, turn, answers, ids, tid))
            else:
                left.waiting.append((item, condition, repeat, turn))
                if stand_in is not None:
                    call = self.later_call(item, condition, repeat, turn, answers, ids, tid)
                    left.stand_ins.append(call)
                    answers.append(self._standing_in(stand_in, item, turn, call.request.prompt))
            # Every turn after the first one not stored waits on it.
            waiting = True
            ids.append(tid)

    @staticmethod
    def _standing_in(
        stand_in: Callable[[Item], TurnAnswer], item: Item, turn: int, prompt: Prompt
    ) -> TurnAnswer:
        """A stand-in answer for a turn not answered yet, with the prompt that turn asks."""
        answer = stand_in(item)
        return TurnAnswer(choice=answer.choice, probs=answer.probs, turn=turn, prompt=prompt)
