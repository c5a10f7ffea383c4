"""The runner: plans every call of an experiment, skips those already stored, runs the rest.

For each model, stage-1 calls go out in batches; as soon as an item's stage-1 answer is
stored, the stage-2 calls of all its conditions are built from that stored answer and queued
(so a stage-2 prompt never depends on anything but the stored record). Each finished call is
appended to the run store at once. Per-model concurrency bounds how many batches are in flight.

Failures. Each call's transient failures are retried (`harness.retry`: backoff, Retry-After,
per-attempt timeout, deadline) under a per-model concurrency limit that halves on 429s and
grows back on successes (`harness.concurrency`). A call that still fails is stored as a
record with its `error`, like any other outcome; a stage-1 failure also stores one record
per stage-2 trial of the item, with the error "not run: ...", so every planned call ends
with exactly one record. A later run retries every failed record (the run store moves them
to failures.jsonl first) unless `retry_failed` is off, in which case they stay as they are.

A paradigm's calibration items get the stage-1 call only, with condition "calibration" (so
their trial ids, and records, are distinct from any main item's), and are asked once per model
whatever `repeats` says: temperature scaling uses their option probabilities, which a repeat
of the same prompt would not change, so repeats would only spend calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from harness.batch_runner import DEFAULT_POLL_S, BatchWaves
from harness.concurrency import AdaptiveLimiter
from harness.config import ExperimentConfig, ModelSection
from harness.models.base import ModelBackend
from harness.paradigm import Condition, InitialAnswer, Item, Paradigm, StagePrompt
from harness.retry import (
    BACKOFF_BASE_S,
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_RETRIES,
    CallRetrier,
    RetryPolicy,
)
from harness.run_store import CallKey, RunStore, is_failure
from harness.trial_ids import CALIBRATION_CONDITION, INITIAL_CONDITION, seed_from_id, trial_id
from harness.types import ChoiceRequest, ChoiceResponse, Usage


class ProgressSink(Protocol):
    """Where the runner reports progress (the CLI draws it; tests may count it)."""

    def start_model(self, model: str, total: int, done: int) -> None: ...

    def advance(self, model: str, calls: int, failed: int = 0) -> None:
        """`calls` more calls are stored, `failed` of them as failures."""

    def retrying(self, model: str, calls: int) -> None:
        """`calls` calls failed transiently and will be tried again after a wait."""

    def concurrency(self, model: str, limit: int) -> None:
        """The model's concurrency limit changed (down on 429s, back up on successes)."""


class NoProgress:
    """A progress sink that ignores everything."""

    def start_model(self, model: str, total: int, done: int) -> None:
        return None

    def advance(self, model: str, calls: int, failed: int = 0) -> None:
        return None

    def retrying(self, model: str, calls: int) -> None:
        return None

    def concurrency(self, model: str, limit: int) -> None:
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
    """Records stored by this run (successes and failures, "not run" records included)."""
    calls_already_stored: dict[str, int] = field(default_factory=dict)
    calls_planned: dict[str, int] = field(default_factory=dict)
    calls_failed: dict[str, int] = field(default_factory=dict)
    """Of `calls_made`, the failures."""
    retries: dict[str, int] = field(default_factory=dict)
    """Attempts that failed transiently and were tried again."""


class ExperimentRunner:
    """Runs one experiment's calls against its backends into one run store."""

    def __init__(
        self,
        config: ExperimentConfig,
        paradigm: Paradigm,
        backends: dict[str, ModelBackend],
        store: RunStore,
        progress: ProgressSink | None = None,
        *,
        retry_failed: bool = True,
        batch: bool = False,
        batch_poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        """`retry_failed`: make the calls whose stored outcome is a failure again (the
        default); off, failed records stay, and the run fills in only what is missing.
        `batch`: models whose provider has a batch API run as batch waves
        (`harness.batch_runner`), polled every `batch_poll_s` seconds."""
        self.config = config
        self.retry_failed = retry_failed
        self.batch = batch
        self.batch_poll_s = batch_poll_s
        self.paradigm = paradigm
        self.backends = backends
        self.store = store
        self.progress: ProgressSink = progress or NoProgress()
        self.items = list(paradigm.items())
        self.items_by_id = {item.item_id: item for item in self.items}
        self.calibration_items = list(paradigm.calibration_items())
        self.conditions = list(paradigm.conditions())

    async def run(self) -> RunReport:
        stored = self.store.records()
        if self.retry_failed:
            stored = self.store.retire_failures(stored)
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

    def _initial_call(
        self, model: ModelSection, item: Item, repeat: int, condition: str = INITIAL_CONDITION
    ) -> PlannedCall:
        tid = self._id(model.id, item.item_id, condition, repeat, 1)
        return PlannedCall(
            request=self._request(model, tid, 1, self.paradigm.initial_prompt(item)),
            item=item,
            condition=condition,
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
        tid: str,
        initial: InitialAnswer,
        initial_trial_id: str,
    ) -> PlannedCall:
        staged = self.paradigm.followup_prompt(item, condition, initial)
        return PlannedCall(
            request=self._request(model, tid, 2, staged),
            item=item,
            condition=condition.name,
            factors=dict(condition.factors),
            repeat=repeat,
            initial_trial_id=initial_trial_id,
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
        if initial_record.get("condition") == CALIBRATION_CONDITION:
            return []  # a calibration item has no stage 2
        # The stage-1 answer once for all the item's conditions, each trial id once.
        readout = initial_record.get("readout") or {}
        initial = InitialAnswer(choice=str(initial_record["choice"]), probs=readout.get("probs"))
        initial_trial_id = str(initial_record["trial_id"])
        calls = []
        for condition in self.conditions:
            tid = self._id(model.id, item.item_id, condition.name, repeat, 2)
            if (tid, 2) not in stored:
                calls.append(
                    self._followup_call(
                        model, item, condition, repeat, tid, initial, initial_trial_id
                    )
                )
        return calls

    def _not_run(
        self,
        model: ModelSection,
        item: Item,
        repeat: int,
        initial_record: dict[str, Any],
        stored: dict[CallKey, Any],
    ) -> list[dict[str, Any]]:
        """Failure records for the stage-2 trials of an item whose stage-1 call failed (and
        that have no record yet): a stage-2 prompt cannot be built without its answer."""
        if not is_failure(initial_record):
            return []
        if initial_record.get("condition") == CALIBRATION_CONDITION:
            return []
        reason = initial_record.get("error") or "no answer"
        finished = datetime.now(UTC).isoformat(timespec="milliseconds")
        records = []
        for condition in self.conditions:
            tid = self._id(model.id, item.item_id, condition.name, repeat, 2)
            if (tid, 2) in stored:
                continue
            records.append(
                {
                    "trial_id": tid,
                    "stage": 2,
                    "model": model.id,
                    "spec": model.spec,
                    "paradigm": self.paradigm.name,
                    "item": item.to_json(),
                    "condition": condition.name,
                    "factors": dict(condition.factors),
                    "repeat": repeat,
                    "initial_trial_id": str(initial_record["trial_id"]),
                    "request": None,
                    "response": None,
                    "choice": None,
                    "readout": None,
                    "usage": Usage().to_json(),
                    "latency_s": 0.0,
                    "batch_size": 0,
                    "attempts": 0,
                    "attempt_errors": [],
                    "error": f"not run: its stage-1 call failed: {reason}",
                    "finished_at": finished,
                }
            )
        return records

    def _retry_policy(self, model: ModelSection, backend: ModelBackend) -> RetryPolicy:
        timeout = backend.attempt_timeout_s
        deadline = model.deadline_s
        if deadline is None and timeout is not None:
            # API calls get the default deadline; in-process models never wait on a server.
            deadline = DEFAULT_DEADLINE_S
        return RetryPolicy(
            max_retries=DEFAULT_MAX_RETRIES if model.max_retries is None else model.max_retries,
            attempt_timeout_s=timeout,
            deadline_s=deadline,
            base_s=model.retry_backoff_s or BACKOFF_BASE_S,
        )

    async def _run_model(
        self, model: ModelSection, stored: dict[CallKey, Any], report: RunReport
    ) -> None:
        backend = self.backends[model.id]
        batch_size = min(model.batch_size or backend.max_batch_size, backend.max_batch_size)
        limiter = AdaptiveLimiter(
            model.concurrency,
            on_change=lambda limit: self.progress.concurrency(model.id, limit),
        )
        report.retries[model.id] = 0

        def count_retries(calls: int) -> None:
            report.retries[model.id] += calls
            self.progress.retrying(model.id, calls)

        retrier = CallRetrier(
            backend, self._retry_policy(model, backend), limiter, on_retry=count_retries
        )
        repeats = range(self.config.experiment.repeats)
        total = len(self.items) * len(repeats) * (1 + len(self.conditions))
        total += len(self.calibration_items)
        pending_initial: list[PlannedCall] = []
        ready_followups: list[PlannedCall] = []
        not_run: list[dict[str, Any]] = []  # kept stage-1 failures' missing stage-2 records
        for repeat in repeats:
            for item in self.items:
                call = self._initial_call(model, item, repeat)
                existing = stored.get(call.key)
                if existing is None:
                    pending_initial.append(call)
                else:
                    ready_followups.extend(self._followups(model, item, repeat, existing, stored))
                    not_run.extend(self._not_run(model, item, repeat, existing, stored))
        # Calibration calls queue after the main items' stage-1 calls: the experiment proper
        # comes first when concurrency is the bottleneck.
        calibration = [
            call
            for call in (
                self._initial_call(model, item, 0, CALIBRATION_CONDITION)
                for item in self.calibration_items
            )
            if call.key not in stored
        ]
        to_make = (
            len(pending_initial) * (1 + len(self.conditions))
            + len(ready_followups)
            + len(calibration)
            + len(not_run)
        )
        pending_initial.extend(calibration)
        report.calls_planned[model.id] = total
        report.calls_already_stored[model.id] = total - to_make
        report.calls_made[model.id] = 0
        report.calls_failed[model.id] = 0
        self.progress.start_model(model.id, total, total - to_make)

        def store(records: list[dict[str, Any]]) -> None:
            if not records:
                return
            self.store.append_many(records)
            failed = sum(1 for record in records if is_failure(record))
            report.calls_made[model.id] += len(records)
            report.calls_failed[model.id] += failed
            self.progress.advance(model.id, len(records), failed)

        store(not_run)

        api = backend.batch_api() if self.batch else None
        if api is not None:
            waves = BatchWaves(self, model, api, stored, store, self.batch_poll_s)
            await waves.run(pending_initial, ready_followups)
            return

        async with asyncio.TaskGroup() as group:

            def schedule(calls: Sequence[PlannedCall]) -> None:
                for start in range(0, len(calls), batch_size):
                    group.create_task(send(calls[start : start + batch_size]))

            async def send(chunk: Sequence[PlannedCall]) -> None:
                started = time.perf_counter()
                try:
                    responses = await retrier.answer([call.request for call in chunk])
                except RuntimeError as error:
                    raise RuntimeError(f"model '{model.id}': {error}") from error
                elapsed = time.perf_counter() - started
                records: list[dict[str, Any]] = []
                followups: list[PlannedCall] = []
                for call, response in zip(chunk, responses, strict=True):
                    record = self._record(model, call, response, elapsed, len(chunk))
                    records.append(record)
                    if call.request.stage == 1:
                        followups.extend(
                            self._followups(model, call.item, call.repeat, record, stored)
                        )
                        records.extend(self._not_run(model, call.item, call.repeat, record, stored))
                # Stage 2 is scheduled only once its stage-1 record is on disk: a crash can
                # never leave a stage-2 record whose stage-1 answer was not stored.
                store(records)
                schedule(followups)

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
            "attempt_errors": list(response.attempt_errors),
            "error": response.error,
            "finished_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
