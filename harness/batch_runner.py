"""`--batch`: one model's calls as waves of provider batches instead of single requests.

Wave 1 submits every pending turn-1 call (split into batches within the provider's
limits); once they are all collected, wave 2 submits every call their answers unlock (turn 2
under every condition), each built from the stored answers exactly as in a normal run, and so
on, one wave per turn, until no call is left (`harness.planner`). Every batch is logged in
batches.jsonl (`harness.batch_log`) before and after it is submitted, so a run that stops —
Ctrl-C, a crash, a closed laptop — resumes by collecting what it submitted: first the
batches still open from before, then whatever was never submitted.

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
from pathlib import Path
from typing import TypeVar

from mindshift.harness.batch_api import BatchApi, BatchError, Prepared
from mindshift.harness.batch_log import BatchLog, OpenBatch
from mindshift.harness.errors import UserError
from mindshift.harness.planner import CallPlanner, PlannedCall
from mindshift.harness.record import CallRecord
from mindshift.harness.run_format import CallKey
from mindshift.harness.types import ChoiceResponse

T = TypeVar("T")

DEFAULT_POLL_S = 30.0
"""How often an unfinished batch is asked about (providers answer within minutes to hours)."""
SUBMIT_RETRIES = 5
"""Transient failures (429, 5xx, network) while submitting or polling are retried."""


class BatchWaves:
    """Runs one model's planned calls as batch waves."""

    def __init__(
        self,
        planner: CallPlanner,
        model_id: str,
        api: BatchApi,
        stored: dict[CallKey, CallRecord],
        store: Callable[[list[CallRecord]], None],
        run_dir: Path,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        self.planner = planner
        self.model_id = model_id
        self.api = api
        self.stored = stored
        self._store = store
        self.poll_s = poll_s
        self.log = BatchLog(run_dir)

    async def run(self, first_turns: Sequence[PlannedCall], ready: Sequence[PlannedCall]) -> None:
        calls = {call.key: call for call in [*first_turns, *ready]}
        unlocked: list[PlannedCall] = list(ready)
        # Batches submitted before a stop: collect them, never submit their calls again.
        reopened = []
        for batch in self.log.open_batches():
            if batch.model != self.model_id:
                continue
            if batch.batch_id is None:
                batch.batch_id = await self._retrying(partial(self.api.find, batch.token))
                if batch.batch_id is None:
                    self.log.abandoned(batch.token, "not found at the provider")
                    continue
                self.log.submitted(batch.token, batch.batch_id)
            reopened.append(batch)
        if reopened:
            unlocked.extend(await self._finish(reopened, calls))
        done = {key for batch in reopened for key in batch.keys}
        wave = [call for call in first_turns if call.key not in done]
        # One wave per turn: each wave's answers unlock the next one's calls.
        while wave or unlocked:
            unlocked.extend(await self._wave(wave))
            pending = [
                call for call in unlocked if call.key not in done and call.key not in self.stored
            ]
            wave = list({call.key: call for call in pending}.values())
            unlocked = []

    async def _wave(self, calls: Sequence[PlannedCall]) -> list[PlannedCall]:
        """Submit `calls` as batches (one turn per batch) and collect them; returns the
        calls their answers unlock."""
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
        for stage in sorted({line.request.stage for line in lines}):
            of_stage = [line for line in lines if line.request.stage == stage]
            for chunk in self._chunks(of_stage):
                token = f"mindshift-{uuid.uuid4().hex}"
                keys = [(line.request.trial_id, line.request.stage) for line in chunk]
                self.log.submitting(token, self.model_id, stage, keys)
                batch_id = await self._retrying(partial(self.api.submit, chunk, token))
                self.log.submitted(token, batch_id)
                batches.append(OpenBatch(token, self.model_id, stage, keys, batch_id))
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
        unlocked: list[PlannedCall] = []
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
                unlocked.extend(self._keep(answered, batch.batch_id, len(batch.keys)))
                self.log.collected(batch.token, batch.batch_id)
            waiting = still
            if waiting:
                await asyncio.sleep(self.poll_s)
        return unlocked

    def _keep(
        self,
        answered: Sequence[tuple[PlannedCall, ChoiceResponse]],
        batch_id: str | None,
        size: int,
    ) -> list[PlannedCall]:
        """Store answers (and the "not run" records of the turns a failure leaves without
        an answer); returns the calls the answers unlock."""
        records: list[CallRecord] = []
        unlocked: list[PlannedCall] = []
        for call, response in answered:
            record = self.planner.record(
                call, response, elapsed=0.0, batch_size=size, batch_id=batch_id
            )
            records.append(record)
            calls, not_run = self.planner.after(record, call.item, self.stored)
            self.stored[call.key] = record
            records.extend(not_run)
            for entry in not_run:
                self.stored[entry.key] = entry
            unlocked.extend(calls)
        self._store(records)
        return unlocked

    async def _retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """A batch request, retried with a growing wait while its failure is transient."""
        wait = 1.0
        for attempt in range(SUBMIT_RETRIES + 1):
            try:
                return await step()
            except BatchError as error:
                if not error.transient or attempt == SUBMIT_RETRIES:
                    raise UserError(
                        f"model '{self.model_id}': batch API: {error} (submitted batches are "
                        "logged in batches.jsonl; run again to collect them)"
                    ) from None
            await asyncio.sleep(min(wait, self.poll_s))
            wait *= 2
        raise AssertionError("unreachable")
