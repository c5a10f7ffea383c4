"""`--batch`: one model's calls as waves of provider batches instead of single requests.

Wave 1 submits every pending stage-1 call (split into batches within the provider's
limits); once they are all collected, wave 2 submits every stage-2 call, each built from
its stored stage-1 answer exactly as in a normal run. Every batch is logged in batches.jsonl
(`harness.batch_log`) before and after it is submitted, so a run that stops — Ctrl-C, a
crash, a closed laptop — resumes by collecting what it submitted: first the batches still
open from before, then whatever was never submitted.

A request the batch answers with an error, or does not answer (an expired batch), is stored
as a failure like any failed call; the next run retries it (in a new batch). Records of
batch calls carry `batch_id`; their `latency_s` is 0 (a batch has no per-call latency).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from harness.batch_api import BatchApi, BatchError, Prepared
from harness.batch_log import BatchLog, OpenBatch
from harness.config import ModelSection
from harness.errors import UserError
from harness.run_store import CallKey, is_failure
from harness.types import ChoiceResponse

if TYPE_CHECKING:
    from harness.runner import ExperimentRunner, PlannedCall

T = TypeVar("T")

DEFAULT_POLL_S = 30.0
"""How often an unfinished batch is asked about (providers answer within minutes to hours)."""
SUBMIT_RETRIES = 5
"""Transient failures (429, 5xx, network) while submitting or polling are retried."""


class BatchWaves:
    """Runs one model's planned calls as batch waves."""

    def __init__(
        self,
        runner: ExperimentRunner,
        model: ModelSection,
        api: BatchApi,
        stored: dict[CallKey, Any],
        store: Callable[[list[dict[str, Any]]], None],
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        self.runner = runner
        self.model = model
        self.api = api
        self.stored = stored
        self._store = store
        self.poll_s = poll_s
        self.log = BatchLog(runner.store.run_dir)

    async def run(
        self, pending_initial: Sequence[PlannedCall], ready_followups: Sequence[PlannedCall]
    ) -> None:
        calls = {call.key: call for call in [*pending_initial, *ready_followups]}
        followups: list[PlannedCall] = list(ready_followups)
        # Batches submitted before a stop: collect them, never submit their calls again.
        reopened = []
        for batch in self.log.open_batches():
            if batch.model != self.model.id:
                continue
            if batch.batch_id is None:
                batch.batch_id = await self._retrying(partial(self.api.find, batch.token))
                if batch.batch_id is None:
                    self.log.abandoned(batch.token, "not found at the provider")
                    continue
                self.log.submitted(batch.token, batch.batch_id)
            reopened.append(batch)
        if reopened:
            followups.extend(await self._finish(reopened, calls))
        done = {key for batch in reopened for key in batch.keys}
        stage1 = [call for call in pending_initial if call.key not in done]
        followups.extend(await self._wave(stage1))
        stage2 = [
            call for call in followups if call.key not in done and call.key not in self.stored
        ]
        unique = list({call.key: call for call in stage2}.values())
        await self._wave(unique)

    async def _wave(self, calls: Sequence[PlannedCall]) -> list[PlannedCall]:
        """Submit `calls` as batches and collect them; returns the stage-2 calls their
        stage-1 answers make possible."""
        if not calls:
            return []
        by_key = {call.key: call for call in calls}
        lines: list[Prepared] = []
        refused: list[tuple[PlannedCall, ChoiceResponse]] = []
        for call in calls:
            prepared = self.api.prepare(call.request)
            if prepared.failure is not None:
                refused.append((call, prepared.failure))
            else:
                lines.append(prepared)
        followups = self._keep(refused, batch_id=None, size=0)
        batches = []
        for chunk in self._chunks(lines):
            token = f"mindshift-{uuid.uuid4().hex}"
            keys = [(line.request.trial_id, line.request.stage) for line in chunk]
            stage = chunk[0].request.stage
            self.log.submitting(token, self.model.id, stage, keys)
            batch_id = await self._retrying(partial(self.api.submit, chunk, token))
            self.log.submitted(token, batch_id)
            batches.append(OpenBatch(token, self.model.id, stage, keys, batch_id))
        followups.extend(await self._finish(batches, by_key))
        return followups

    def _chunks(self, lines: Sequence[Prepared]) -> list[list[Prepared]]:
        chunks: list[list[Prepared]] = []
        current: list[Prepared] = []
        size = 0
        for line in lines:
            length = len(json.dumps(line.line)) + 1
            if current and (
                len(current) >= self.api.max_requests or size + length > self.api.max_bytes
            ):
                chunks.append(current)
                current, size = [], 0
            current.append(line)
            size += length
        if current:
            chunks.append(current)
        return chunks

    async def _finish(
        self, batches: list[OpenBatch], calls: dict[CallKey, PlannedCall]
    ) -> list[PlannedCall]:
        """Poll `batches` until each is done, storing each one's answers as it finishes."""
        followups: list[PlannedCall] = []
        waiting = list(batches)
        while waiting:
            still = []
            for batch in waiting:
                assert batch.batch_id is not None
                status = await self._retrying(partial(self.api.status, batch.batch_id))
                if not status.done:
                    still.append(batch)
                    continue
                todo = [calls[key] for key in batch.keys if key in calls and key not in self.stored]
                responses = await self._retrying(
                    partial(self.api.collect, batch.batch_id, [c.request for c in todo])
                )
                answered = list(zip(todo, responses, strict=True))
                followups.extend(self._keep(answered, batch.batch_id, len(batch.keys)))
                self.log.collected(batch.token, batch.batch_id)
            waiting = still
            if waiting:
                await asyncio.sleep(self.poll_s)
        return followups

    def _keep(
        self,
        answered: Sequence[tuple[PlannedCall, ChoiceResponse]],
        batch_id: str | None,
        size: int,
    ) -> list[PlannedCall]:
        """Store answers (and the "not run" records of failed stage-1 calls); returns the
        stage-2 calls of the stage-1 answers among them."""
        runner, model = self.runner, self.model
        records: list[dict[str, Any]] = []
        followups: list[PlannedCall] = []
        for call, response in answered:
            record = runner._record(model, call, response, 0.0, size)
            if batch_id is not None:
                record["batch_id"] = batch_id
            records.append(record)
            self.stored[call.key] = record
            if call.request.stage == 1:
                if is_failure(record):
                    not_run = runner._not_run(model, call.item, call.repeat, record, self.stored)
                    records.extend(not_run)
                    for entry in not_run:
                        self.stored[(entry["trial_id"], entry["stage"])] = entry
                else:
                    followups.extend(
                        runner._followups(model, call.item, call.repeat, record, self.stored)
                    )
        self._store(records)
        return followups

    async def _retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """A batch request, retried with a growing wait while its failure is transient."""
        wait = 1.0
        for attempt in range(SUBMIT_RETRIES + 1):
            try:
                return await step()
            except BatchError as error:
                if not error.transient or attempt == SUBMIT_RETRIES:
                    raise UserError(
                        f"model '{self.model.id}': batch API: {error} (submitted batches are "
                        "logged in batches.jsonl; run again to collect them)"
                    ) from None
            await asyncio.sleep(min(wait, self.poll_s))
            wait *= 2
        raise AssertionError("unreachable")
