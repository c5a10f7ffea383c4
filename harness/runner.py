"""The runner: plans every call of an experiment, skips those already stored, runs the rest.

For each model, stage-1 calls go out in batches; as soon as an item's stage-1 answer is
stored, the stage-2 calls of all its conditions are built from that stored answer and queued
(so a stage-2 prompt never depends on anything but the stored record). Each finished call is
appended to the run store at once. Per-model concurrency bounds how many batches are in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from harness.config import ExperimentConfig, ModelSection
from harness.models.base import ModelBackend
from harness.paradigm import Condition, InitialAnswer, Item, Paradigm, StagePrompt
from harness.run_store import CallKey, RunStore
from harness.trial_ids import INITIAL_CONDITION, seed_from_id, trial_id
from harness.types import ChoiceRequest, ChoiceResponse


class ProgressSink(Protocol):
    """Where the runner reports progress (the CLI draws it; tests may count it)."""

    def start_model(self, model: str, total: int, done: int) -> None: ...

    def advance(self, model: str, calls: int) -> None: ...


class NoProgress:
    """A progress sink that ignores everything."""

    def start_model(self, model: str, total: int, done: int) -> None:
        return None

    def advance(self, model: str, calls: int) -> None:
        return None


@dataclass(frozen=True)
class PlannedCall:
    """A call to make, with what its record must say besides the response."""

    request: ChoiceRequest
    item: Item
    condition: str
    factors: dict[str, Any]
    repeat: int
    initial_trial_id: str | None

    @property
    def key(self) -> CallKey:
        return (self.request.trial_id, self.request.stage)


@dataclass
class RunReport:
    """What a run (or resume) did."""

    calls_made: dict[str, int] = field(default_factory=dict)
    calls_already_stored: dict[str, int] = field(default_factory=dict)
    calls_planned: dict[str, int] = field(default_factory=dict)


class ExperimentRunner:
    """Runs one experiment's calls against its backends into one run store."""

    def __init__(
        self,
        config: ExperimentConfig,
        paradigm: Paradigm,
        backends: dict[str, ModelBackend],
        store: RunStore,
        progress: ProgressSink | None = None,
    ) -> None:
        self.config = config
        self.paradigm = paradigm
        self.backends = backends
        self.store = store
        self.progress: ProgressSink = progress or NoProgress()
        self.items = list(paradigm.items())
        self.items_by_id = {item.item_id: item for item in self.items}
        self.conditions = list(paradigm.conditions())

    async def run(self) -> RunReport:
        stored = self.store.load()
        report = RunReport()
        async with asyncio.TaskGroup() as group:
            for model in self.config.models:
                group.create_task(self._run_model(model, stored, report))
        return report

    def _id(self, model: str, item: str, condition: str, repeat: int, stage: int) -> str:
        return trial_id(
            experiment=self.config.experiment.name,
            seed=self.config.experiment.seed,
            model=model,
            paradigm=self.paradigm.name,
            item=item,
            condition=condition,
            repeat=repeat,
            stage=stage,
        )

    def _request(
        self, model: ModelSection, tid: str, stage: int, staged: StagePrompt
    ) -> ChoiceRequest:
        return ChoiceRequest(
            trial_id=tid,
            stage=stage,
            prompt=staged.prompt,
            temperature=model.temperature,
            seed=seed_from_id(tid, "sample"),
            situation=staged.situation,
        )

    def _initial_call(self, model: ModelSection, item: Item, repeat: int) -> PlannedCall:
        tid = self._id(model.id, item.item_id, INITIAL_CONDITION, repeat, 1)
        return PlannedCall(
            request=self._request(model, tid, 1, self.paradigm.initial_prompt(item)),
            item=item,
            condition=INITIAL_CONDITION,
            factors={},
            repeat=repeat,
            initial_trial_id=None,
        )

    def _followup_call(
        self,
        model: ModelSection,
        item: Item,
        condition: Condition,
        repeat: int,
        initial_record: dict[str, Any],
    ) -> PlannedCall:
        tid = self._id(model.id, item.item_id, condition.name, repeat, 2)
        readout = initial_record.get("readout") or {}
        initial = InitialAnswer(choice=str(initial_record["choice"]), probs=readout.get("probs"))
        staged = self.paradigm.followup_prompt(item, condition, initial)
        return PlannedCall(
            request=self._request(model, tid, 2, staged),
            item=item,
            condition=condition.name,
            factors=dict(condition.factors),
            repeat=repeat,
            initial_trial_id=str(initial_record["trial_id"]),
        )

    def _followups(
        self,
        model: ModelSection,
        item: Item,
        repeat: int,
        initial_record: dict[str, Any],
        stored: dict[CallKey, Any],
    ) -> list[PlannedCall]:
        if initial_record.get("error") is not None or initial_record.get("choice") is None:
            return []
        calls = []
        for condition in self.conditions:
            tid = self._id(model.id, item.item_id, condition.name, repeat, 2)
            if (tid, 2) not in stored:
                calls.append(self._followup_call(model, item, condition, repeat, initial_record))
        return calls

    async def _run_model(
        self, model: ModelSection, stored: dict[CallKey, Any], report: RunReport
    ) -> None:
        backend = self.backends[model.id]
        batch_size = min(model.batch_size or backend.max_batch_size, backend.max_batch_size)
        slots = asyncio.Semaphore(model.concurrency)
        repeats = range(self.config.experiment.repeats)
        total = len(self.items) * len(repeats) * (1 + len(self.conditions))
        pending_initial: list[PlannedCall] = []
        ready_followups: list[PlannedCall] = []
        for repeat in repeats:
            for item in self.items:
                call = self._initial_call(model, item, repeat)
                existing = stored.get(call.key)
                if existing is None:
                    pending_initial.append(call)
                else:
                    ready_followups.extend(self._followups(model, item, repeat, existing, stored))
        to_make = len(pending_initial) * (1 + len(self.conditions)) + len(ready_followups)
        report.calls_planned[model.id] = total
        report.calls_already_stored[model.id] = total - to_make
        report.calls_made[model.id] = 0
        self.progress.start_model(model.id, total, total - to_make)

        async with asyncio.TaskGroup() as group:

            def schedule(calls: Sequence[PlannedCall]) -> None:
                for start in range(0, len(calls), batch_size):
                    group.create_task(send(calls[start : start + batch_size]))

            async def send(chunk: Sequence[PlannedCall]) -> None:
                async with slots:
                    started = time.perf_counter()
                    responses = await backend.answer([call.request for call in chunk])
                    elapsed = time.perf_counter() - started
                if len(responses) != len(chunk):
                    raise RuntimeError(
                        f"model '{model.id}' answered {len(responses)} of {len(chunk)} requests"
                    )
                for call, response in zip(chunk, responses, strict=True):
                    record = self._record(model, call, response, elapsed, len(chunk))
                    self.store.append(record)
                    report.calls_made[model.id] += 1
                    if call.request.stage == 1:
                        schedule(self._followups(model, call.item, call.repeat, record, stored))
                self.progress.advance(model.id, len(chunk))

            schedule(pending_initial)
            schedule(ready_followups)

    def _record(
        self,
        model: ModelSection,
        call: PlannedCall,
        response: ChoiceResponse,
        elapsed: float,
        batch: int,
    ) -> dict[str, Any]:
        request = call.request
        return {
            "trial_id": request.trial_id,
            "stage": request.stage,
            "model": model.id,
            "spec": model.spec,
            "paradigm": self.paradigm.name,
            "item": call.item.to_json(),
            "condition": call.condition,
            "factors": call.factors,
            "repeat": call.repeat,
            "initial_trial_id": call.initial_trial_id,
            "request": {
                **request.prompt.to_json(),
                "temperature": request.temperature,
                "seed": request.seed,
                "situation": request.situation,
            },
            "response": response.raw,
            "choice": response.choice,
            "readout": None if response.readout is None else response.readout.to_json(),
            "usage": response.usage.to_json(),
            "latency_s": response.latency_s or elapsed,
            "batch_size": batch,
            "attempts": response.attempts,
            "error": response.error,
            "finished_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
