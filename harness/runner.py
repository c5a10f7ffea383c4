"""The runner: plans every call of an experiment, skips those already stored, runs the rest.

For each model, turn-1 calls go out in batches; as soon as a turn's answer is stored, the
calls of the turns it unlocks (turn 2 under every condition after turn 1; turn k + 1 of the
same condition after turn k) are built from the stored answers and queued, so a prompt never
depends on anything but stored records (`harness.planner`). Each finished call is appended to
the run store at once. Per-model concurrency bounds how many batches are in flight.

Failures. Each call's transient failures are retried (`harness.retry`: backoff, Retry-After,
per-attempt timeout, deadline) under a per-model concurrency limit that halves on 429s and
grows back on successes (`harness.concurrency`). A call that still fails is stored as a
record with its `error`, like any other outcome; a failed turn also stores one record per
later turn of its branch, with the error "not run: ...", so every planned call ends with
exactly one record. A later run retries every failed record (the run store moves them to
failures.jsonl first) unless `retry_failed` is off, in which case they stay as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mindshift.harness.batch_runner import DEFAULT_POLL_S, BatchWaves
from mindshift.harness.concurrency import AdaptiveLimiter
from mindshift.harness.config import ExperimentConfig, ModelSection
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.paradigm import Paradigm
from mindshift.harness.planner import CallPlanner, ModelPlan, PlannedCall
from mindshift.harness.readouts import readout_name_of
from mindshift.harness.record import CallRecord
from mindshift.harness.retry import (
    BACKOFF_BASE_S,
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_RETRIES,
    CallRetrier,
    RetryPolicy,
)
from mindshift.harness.run_format import CallKey
from mindshift.harness.run_store import RunStore
from mindshift.harness.types import Item


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


@dataclass(frozen=True)
class RunScope:
    """The part of a config's design one run makes: which of its models, and at most how
    many items of each (`mindshift run --models`, `--limit`, a model entry's `items`).

    A model runs on the first N items of the design, in the paradigm's order, and on the
    first N calibration items, N being the smallest of `limit` and the entry's `items`.
    Trial ids do not depend on the scope, so a later run with a wider one (the same config
    without `--limit`) completes the same run directory and repeats no call.
    """

    models: frozenset[str] | None = None
    """The model ids to run; None: every model of the config."""
    limit: int | None = None
    """At most this many items per model; None: as the config says."""

    def selected(self, models: Sequence[ModelSection]) -> list[ModelSection]:
        """The config's model entries this run makes calls for, in the config's order."""
        return [model for model in models if self.models is None or model.id in self.models]

    def item_count(self, model: ModelSection) -> int | None:
        """How many items `model` runs on; None: all of them."""
        counts = [count for count in (self.limit, model.items) if count is not None]
        return min(counts) if counts else None

    def first_items(self, model: ModelSection, items: Sequence[Item]) -> list[Item]:
        """The items (or calibration items) `model` runs on: the first `item_count`."""
        return list(items[: self.item_count(model)])


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
        scope: RunScope | None = None,
    ) -> None:
        """`retry_failed`: make the calls whose stored outcome is a failure again (the
        default); off, failed records stay, and the run fills in only what is missing.
        `batch`: models whose provider has a batch API run as batch waves
        (`harness.batch_runner`), polled every `batch_poll_s` seconds. `scope`: the models
        and items this run makes (default: the whole design); `backends` holds at least
        the scope's models."""
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
        self.scope = scope or RunScope()
        self.models = self.scope.selected(config.models)

    async def run(self) -> RunReport:
        stored = self.store.records()
        if self.retry_failed:
            stored = self._retire_failures(stored)
        report = RunReport()
        async with asyncio.TaskGroup() as group:
            for model in self.models:
                group.create_task(self._run_model(model, stored, report))
        return report

    def _retire_failures(self, stored: dict[CallKey, CallRecord]) -> dict[CallKey, CallRecord]:
        """Retire the failed records this run will make again (`RunStore.retire_failures`);
        those outside the scope stay stored as they are, for a run that covers them."""
        in_scope: dict[str, Collection[str]] = {}
        for model in self.models:
            chosen = self.scope.first_items(model, self.items)
            chosen += self.scope.first_items(model, self.calibration_items)
            in_scope[model.id] = {item.item_id for item in chosen}
        kept = {
            key: record
            for key, record in stored.items()
            if record.failed and record.item.item_id not in in_scope.get(record.model, ())
        }
        if not kept:
            return self.store.retire_failures(stored)
        retired = self.store.retire_failures(
            {key: record for key, record in stored.items() if key not in kept}
        )
        remaining = {**retired, **kept}
        self.store.adopt(remaining)
        return remaining

    def planner(self, model: ModelSection) -> CallPlanner:
        """The call planner of one model (the paradigm's items are generated once)."""
        experiment = self.config.experiment
        return CallPlanner(
            experiment=experiment.name,
            seed=experiment.seed,
            repeats=experiment.repeats,
            paradigm=self.paradigm,
            model=ModelPlan(
                model.id, model.spec, model.temperature, readout_name_of(self.backends[model.id])
            ),
            items=self.scope.first_items(model, self.items),
            calibration_items=self.scope.first_items(model, self.calibration_items),
            conditions=self.conditions,
        )

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
        self, model: ModelSection, stored: dict[CallKey, CallRecord], report: RunReport
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
        planner = self.planner(model)
        left = planner.remaining(stored)
        report.calls_planned[model.id] = left.planned
        report.calls_already_stored[model.id] = left.stored
        report.calls_made[model.id] = 0
        report.calls_failed[model.id] = 0
        self.progress.start_model(model.id, left.planned, left.stored)

        def store(records: list[CallRecord]) -> None:
            if not records:
                return
            self.store.append_many(records)
            failed = sum(1 for record in records if record.failed)
            report.calls_made[model.id] += len(records)
            report.calls_failed[model.id] += failed
            self.progress.advance(model.id, len(records), failed)

        store(left.not_run)

        api = backend.batch_api() if self.batch else None
        if api is not None:
            waves = BatchWaves(
                planner, model.id, api, stored, store, self.store.run_dir, self.batch_poll_s
            )
            await waves.run(left.first_turns, left.ready)
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
                records: list[CallRecord] = []
                unlocked: list[PlannedCall] = []
                for call, response in zip(chunk, responses, strict=True):
                    record = planner.record(call, response, elapsed=elapsed, batch_size=len(chunk))
                    records.append(record)
                    calls, not_run = planner.after(record, call.item, stored)
                    unlocked.extend(calls)
                    records.extend(not_run)
                # The turns a call unlocks are scheduled only once its record is on disk: a
                # crash can never leave a later turn whose earlier answer was not stored.
                store(records)
                schedule(unlocked)

            schedule(left.first_turns)
            schedule(left.ready)
