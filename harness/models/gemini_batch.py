"""Gemini's batch mode for `gemini:` models (`mindshift run --batch`), through google-genai's
`client.aio.batches`.

A batch job is created with inlined requests (`batches.create(model, src=[InlinedRequest
...])`, each with the exact contents and generation config a single `gemini:` call sends,
and `metadata.key` naming the call), polled with `batches.get(name)` until its state is
final (JOB_STATE_SUCCEEDED, _FAILED, _CANCELLED or _EXPIRED), and read from
`dest.inlined_responses` (a response or an error per request). Inlined requests are limited
to about 20 MB per job, so a wave is split into jobs of at most 15 MB of requests. The
answers are read by the same code as single calls (`GeminiFormat.response_from`).

A free-text reply request is one inlined request asking its `n` replies as candidates
(`candidateCount`): a request for more than the model's `max_candidates` cannot be one batch
line, and fails with that reason (single calls spread such requests over several requests;
a batch line cannot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx2
from google.genai import batches as genai_batches
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from mindshift.harness.batch_api import BatchError, BatchStatus, Prepared, PreparedReply, custom_id
from mindshift.harness.errors import UserError
from mindshift.harness.models.chat_answer import ReplyError, replies_of
from mindshift.harness.models.gemini_wire import (
    FATAL_STATUS,
    RETRYABLE_STATUS,
    GeminiFormat,
    error_message,
    reply_texts,
    usage_of,
)
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    ReplyRequest,
    ReplyResponse,
)

MAX_REQUESTS = 10_000
MAX_BYTES = 15 * 1024 * 1024
"""Below the API's 20 MB for inlined requests."""
FINAL_STATES = frozenset(
    {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
)
LIST_PAGE_SIZE = 100
LIST_LIMIT = 500
"""How many recent jobs `find` looks through."""


class GeminiBatch:
    """Batch mode for one `gemini:` model: its SDK's batch client, its request format, its id."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(
        self, batches: genai_batches.AsyncBatches, wire: GeminiFormat, model_id: str
    ) -> None:
        """`batches`: the model's client's `aio.batches`; `model_id` names the model in
        messages."""
        self._batches = batches
        self.wire = wire
        self.model_id = model_id

    def prepare(self, request: ChoiceRequest) -> Prepared:
        problem = self.wire.unanswerable(request)
        if problem is not None:
            failure = ChoiceResponse(choice=None, readout=None, raw={}, error=problem)
            return Prepared(request, None, failure)
        contents, config = self.wire.request(request)
        line = {"contents": contents, "config": config, "metadata": {"key": custom_id(request)}}
        return Prepared(request, line)

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        limit = self.wire.settings.max_candidates
        if request.n > limit:
            failure = ReplyResponse(
                texts=(),
                raw={},
                error=f"{request.n} replies in one batch request, but the model gives at most "
                f"{limit} candidates per request (max_candidates); run it without --batch",
            )
            return PreparedReply(request, None, failure)
        contents, config = self.wire.reply_request(request, candidates=request.n, seed=request.seed)
        line = {"contents": contents, "config": config, "metadata": {"key": custom_id(request)}}
        return PreparedReply(request, line)

    async def submit(self, lines: Sequence[Prepared | PreparedReply], token: str) -> str:
        inlined = [
            genai_types.InlinedRequest(
                model=self.wire.model,
                contents=p.line["contents"],
                config=genai_types.GenerateContentConfig.model_validate(p.line["config"]),
                metadata=p.line["metadata"],
            )
            for p in lines
            if p.line is not None
        ]
        job = await self._call(
            self._batches.create(
                model=self.wire.model,
                src=inlined,
                config=genai_types.CreateBatchJobConfig(display_name=token),
            )
        )
        if not job.name:
            raise BatchError("the batch job came back without a name", transient=False)
        return str(job.name)

    async def find(self, token: str) -> str | None:
        pager = await self._call(
            self._batches.list(config=genai_types.ListBatchJobsConfig(page_size=LIST_PAGE_SIZE))
        )
        seen = 0
        try:
            async for job in pager:
                if job.display_name == token and job.name:
                    return str(job.name)
                seen += 1
                if seen >= LIST_LIMIT:
                    break
        except (genai_errors.APIError, httpx2.TransportError) as error:
            raise self._failure(error) from None
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        job = await self._call(self._batches.get(name=batch_id))
        state = str(job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED")
        return BatchStatus(state=state, done=state in FINAL_STATES)

    async def collect(
        self, batch_id: str, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        state, answers = await self._answers(batch_id, [custom_id(r) for r in requests])
        return [self._answer(r, answers.get(custom_id(r)), state) for r in requests]

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        state, answers = await self._answers(batch_id, [custom_id(r) for r in requests])
        return [self._replies(r, answers.get(custom_id(r)), state) for r in requests]

    async def _answers(
        self, batch_id: str, keys: Sequence[str]
    ) -> tuple[str, dict[str, genai_types.InlinedResponse]]:
        """A finished job's state and its inlined responses by key (`keys`: the requests'
        keys, in the order they were submitted)."""
        job = await self._call(self._batches.get(name=batch_id))
        state = str(job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED")
        answers: dict[str, genai_types.InlinedResponse] = {}
        inlined = (job.dest.inlined_responses if job.dest is not None else None) or []
        for position, answer in enumerate(inlined):
            key = (answer.metadata or {}).get("key")
            if key is None and position < len(keys):
                key = keys[position]  # results come in request order
            if key is not None:
                answers[key] = answer
        return state, answers

    def _request_raw(self, line: dict[str, Any] | None) -> dict[str, JsonValue]:
        line = line or {}
        return {
            "request": {
                "model": self.wire.model,
                "contents": line.get("contents"),
                "config": line.get("config"),
            }
        }

    def _answer(
        self, request: ChoiceRequest, answer: genai_types.InlinedResponse | None, state: str
    ) -> ChoiceResponse:
        raw = self._request_raw(self.prepare(request).line)
        problem = _unanswered(answer, state, raw)
        if problem is not None:
            return ChoiceResponse(choice=None, readout=None, raw=raw, error=problem)
        assert answer is not None and answer.response is not None
        return self.wire.response_from(answer.response, request.prompt.labels, raw, 0.0)

    def _replies(
        self, request: ReplyRequest, answer: genai_types.InlinedResponse | None, state: str
    ) -> ReplyResponse:
        prepared = self.prepare_reply(request)
        if prepared.failure is not None:
            return prepared.failure
        raw = self._request_raw(prepared.line)
        problem = _unanswered(answer, state, raw)
        if problem is not None:
            return ReplyResponse(texts=(), raw=raw, error=problem)
        assert answer is not None and answer.response is not None
        response = answer.response
        raw["response"] = self.wire.dump(response)
        usage = usage_of(response)
        texts, reasons = reply_texts(response, request.n)
        try:
            replies = replies_of(texts, request.n, reasons)
        except ReplyError as error:
            return ReplyResponse(texts=(), raw=raw, usage=usage, error=str(error))
        return ReplyResponse(texts=replies, raw=raw, usage=usage)

    async def _call(self, step: Any) -> Any:
        try:
            return await step
        except (genai_errors.APIError, httpx2.TransportError) as error:
            raise self._failure(error) from None

    def _failure(self, error: Exception) -> BatchError:
        if isinstance(error, genai_errors.APIError):
            if error.code in FATAL_STATUS:
                raise UserError(f"model '{self.model_id}': batch API: {error_message(error)}")
            transient = error.code in RETRYABLE_STATUS or error.code >= 500
            return BatchError(error_message(error), transient=transient)
        return BatchError(f"{type(error).__name__}: {error}", transient=True)


def _unanswered(
    answer: genai_types.InlinedResponse | None, state: str, raw: dict[str, JsonValue]
) -> str | None:
    """Why a batch request has no response (its error noted in `raw`); None when it has."""
    if answer is None:
        return f"the batch job ended {state} without answering this request"
    if answer.error is not None or answer.response is None:
        error = answer.error
        message = (error.message if error is not None else None) or "no response"
        code = error.code if error is not None else None
        raw["response"] = error.model_dump(mode="json") if error is not None else None
        return f"batch error {code}: {message}" if code else f"batch error: {message}"
    return None
