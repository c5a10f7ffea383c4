"""The batch-API contract between the runner and the backends that offer one.

OpenAI's Batch API and Gemini's batch mode take many requests at once, answer them within
hours at half the price, and are paid for at submission. A backend that offers batch mode
returns a `BatchApi` from `ModelBackend.batch_api()`; the runner (`harness.batch_runner`)
submits each stage as one wave of batches, records every batch id in the run directory
(`harness.batch_log`) and, after a restart, collects the batches it submitted instead of
submitting (and paying for) them again.

A batch is tagged with a token the runner makes before submitting it (OpenAI: batch
metadata; Gemini: the display name; Anthropic: a tag ending every request's custom id), so a
batch whose id was lost — mindshift killed between the provider's answer and the log's
write — is found again with `find`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from mindshift.harness.types import ChoiceRequest, ChoiceResponse, ReplyRequest, ReplyResponse

BATCH_PROVIDERS = ("openai:", "gemini:", "anthropic:")
"""Spec prefixes of the providers whose backends offer a batch API (`--batch` runs the
others call by call, and prices only these at the batch discount)."""


def custom_id(request: ChoiceRequest | ReplyRequest) -> str:
    """The id a batch line carries to say which call it answers (trial id and stage)."""
    return f"{request.trial_id}-{request.stage}"


class BatchError(Exception):
    """A batch request (submit, status, collect) failed; `transient` when trying again
    later may succeed (a 429, a 5xx, a network error)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class BatchStatus:
    """Where a submitted batch stands."""

    state: str
    """The provider's own word for it (validating, in_progress, JOB_STATE_RUNNING, ...)."""
    done: bool
    """No more answers will come: collect it (answers missing then are failures)."""
    counts: dict[str, int] | None = None
    """Requests completed / failed / total, when the provider says."""


RequestT = TypeVar("RequestT", ChoiceRequest, ReplyRequest, default=ChoiceRequest)
ResponseT = TypeVar("ResponseT", ChoiceResponse, ReplyResponse, default=ChoiceResponse)


@dataclass(frozen=True)
class Prepared(Generic[RequestT, ResponseT]):
    """A request as a batch line, or the failure that keeps it out of any batch.

    `Prepared` alone is a choice request's (`prepare`); a free-text reply request's is
    `Prepared[ReplyRequest, ReplyResponse]` (`prepare_reply`)."""

    request: RequestT
    line: dict[str, Any] | None
    failure: ResponseT | None = None


PreparedReply = Prepared[ReplyRequest, ReplyResponse]
"""A reply request as a batch line (`BatchApi.prepare_reply`)."""


class BatchApi(Protocol):
    """What a backend offers for batch mode."""

    max_requests: int
    """Most requests in one batch (OpenAI: 50,000; Gemini inline: bounded by size)."""
    max_bytes: int
    """Most bytes of request lines in one batch."""

    def prepare(self, request: ChoiceRequest) -> Prepared:
        """The batch line of a request (its exact body), or why it cannot be sent."""
        ...

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        """The batch line of a free-text reply request (its `n` replies in one line), or
        why it cannot be sent."""
        ...

    async def submit(self, lines: Sequence[Prepared | PreparedReply], token: str) -> str:
        """Submit one batch tagged with `token`; returns the provider's batch id.

        Every method raises `BatchError` when the provider cannot be asked, and `UserError`
        for what stops the run (a rejected key)."""
        ...

    async def find(self, token: str) -> str | None:
        """The id of a batch submitted with `token`, if the provider still lists it."""
        ...

    async def status(self, batch_id: str) -> BatchStatus: ...

    async def collect(
        self, batch_id: str, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        """The answer to each request of a finished batch, in order (a failure for any
        request the batch did not answer)."""
        ...

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        """The replies to each reply request of a finished batch, in order (a failure for
        any request the batch did not answer)."""
        ...
