"""`--batch` under a readout without logprobs: each trial's reply request as one batch line.

A readout that asks once per trial call (`sampling` with the provider's `n`, `verbal`) turns
each trial's ChoiceRequest into its reply request, which the provider's batch API sends as one
line (`BatchApi.prepare_reply`) and answers in the batch (`collect_replies`); the readout then
reads the replies exactly as it reads them outside a batch. The batch waves, the batch log and
restart safety are the runner's, unchanged: a line's id is still the trial's key.

Readouts that ask twice per trial call (`verbal-2stage`, `ptrue`), and sampling on a provider
without `n` (N lines per trial), are not offered under `--batch`: one trial would span two
waves, or many lines. `ReadoutBackend.batch_api` says so in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mindshift.harness.batch_api import BatchApi, BatchStatus, Prepared, PreparedReply
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, ReplyRequest, ReplyResponse


class OneStepReadout(Protocol):
    """A readout whose trial call is one reply request."""

    def first_request(self, request: ChoiceRequest) -> ReplyRequest: ...

    def combine(self, request: ChoiceRequest, reply: ReplyResponse) -> ChoiceResponse: ...


class ReadoutBatch:
    """The provider's batch API, trial calls read through a one-step readout."""

    def __init__(self, inner: BatchApi, readout: OneStepReadout) -> None:
        self.inner = inner
        self.readout = readout
        self.max_requests = inner.max_requests
        self.max_bytes = inner.max_bytes

    def prepare(self, request: ChoiceRequest) -> Prepared:
        prepared = self.inner.prepare_reply(self.readout.first_request(request))
        failure = (
            None if prepared.failure is None else self.readout.combine(request, prepared.failure)
        )
        return Prepared(request=request, line=prepared.line, failure=failure)

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        return self.inner.prepare_reply(request)

    async def submit(self, lines: Sequence[Prepared | PreparedReply], token: str) -> str:
        return await self.inner.submit(lines, token)

    async def find(self, token: str) -> str | None:
        return await self.inner.find(token)

    async def status(self, batch_id: str) -> BatchStatus:
        return await self.inner.status(batch_id)

    async def collect(
        self, batch_id: str, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        asks = [self.readout.first_request(request) for request in requests]
        replies = await self.inner.collect_replies(batch_id, asks)
        return [
            self.readout.combine(request, reply)
            for request, reply in zip(requests, replies, strict=True)
        ]

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        return await self.inner.collect_replies(batch_id, requests)
