"""OpenAI's Batch API for `openai:` models (`mindshift run --batch`).

A batch is a JSONL file of requests (`custom_id`, `method`, `url`, `body`), uploaded with
purpose "batch" (`POST /files`), then run by `POST /batches` (endpoint
/v1/chat/completions, completion window 24h); `GET /batches/{id}` reports its status, and
once it is completed (or failed, expired, cancelled) its output file holds one line per
answered request (`custom_id`, `response.status_code`, `response.body`) and its error file
one line per request that failed. The bodies are the exact ones `openai:` sends one at a
time, and the answers are read by the same code (`ChatCompletionsFormat.response_from_body`).
A free-text reply request is one line whose body carries `n`, as a single call's does, and
its replies are read by `ChatCompletionsFormat.replies_from_body`.
At most 50,000 requests and 200 MB per batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import openai
from openai import AsyncOpenAI

from mindshift.harness.batch_api import BatchError, BatchStatus, Prepared, PreparedReply, custom_id
from mindshift.harness.errors import UserError
from mindshift.harness.models.openai_wire import (
    FATAL_STATUS,
    ChatCompletionsFormat,
    error_text,
    transient_of,
)
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    ReplyRequest,
    ReplyResponse,
)

ENDPOINT: Final = "/v1/chat/completions"
MAX_REQUESTS = 50_000
MAX_BYTES = 190 * 1024 * 1024
"""Below the API's 200 MB, for the file's own overhead."""
FINAL_STATES = frozenset({"completed", "failed", "expired", "cancelled"})
LIST_PAGES = 5
"""How many pages of 100 recent batches `find` looks through."""


class OpenAIBatch:
    """The Batch API for one `openai:` model: its client, its request format, its id."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, client: AsyncOpenAI, wire: ChatCompletionsFormat, model_id: str) -> None:
        """`client`: the model's SDK client, which makes one attempt per request, like every
        call (`harness.batch_runner` retries); `model_id` names the model in messages."""
        self._client = client
        self.wire = wire
        self.model_id = model_id

    def prepare(self, request: ChoiceRequest) -> Prepared:
        problem = self.wire.unanswerable(request)
        if problem is not None:
            failure = ChoiceResponse(choice=None, readout=None, raw={}, error=problem)
            return Prepared(request, None, failure)
        return Prepared(request, self._line(request, self.wire.request_body(request)))

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        return PreparedReply(request, self._line(request, self.wire.reply_body(request)))

    @staticmethod
    def _line(request: ChoiceRequest | ReplyRequest, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id(request), "method": "POST", "url": ENDPOINT, "body": body}

    async def submit(self, lines: Sequence[Prepared | PreparedReply], token: str) -> str:
        data = "".join(json.dumps(p.line, separators=(",", ":")) + "\n" for p in lines)
        try:
            upload = await self._client.files.create(
                file=(f"{token}.jsonl", data.encode("utf-8"), "application/jsonl"),
                purpose="batch",
            )
            batch = await self._client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"mindshift_token": token},
            )
        except openai.APIError as error:
            raise self._failure(error) from None
        return batch.id

    async def find(self, token: str) -> str | None:
        try:
            page = await self._client.batches.list(limit=100)
            for _ in range(LIST_PAGES):
                for batch in page.data:
                    if (batch.metadata or {}).get("mindshift_token") == token:
                        return batch.id
                if not page.has_next_page():
                    break
                page = await page.get_next_page()
        except openai.APIError as error:
            raise self._failure(error) from None
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        try:
            batch = await self._client.batches.retrieve(batch_id)
        except openai.APIError as error:
            raise self._failure(error) from None
        counts = batch.request_counts
        return BatchStatus(
            state=batch.status,
            done=batch.status in FINAL_STATES,
            counts=None if counts is None else counts.model_dump(),
        )

    async def collect(
        self, batch_id: str, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        results = await self._results(batch_id)
        return [self._answer(request, results) for request in requests]

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        results = await self._results(batch_id)
        return [self._replies(request, results) for request in requests]

    async def _results(self, batch_id: str) -> _Results:
        """The result lines of a finished batch (output and error files), by custom id."""
        try:
            batch = await self._client.batches.retrieve(batch_id)
            lines: dict[str, dict[str, Any]] = {}
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await self._client.files.content(file_id)
                    for text in content.text.splitlines():
                        if text.strip():
                            line = json.loads(text)
                            lines[str(line.get("custom_id"))] = line
        except openai.APIError as error:
            raise self._failure(error) from None
        except json.JSONDecodeError as error:
            message = f"batch {batch_id}: unreadable result file: {error}"
            raise BatchError(message, transient=True) from None
        problems = (
            "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
        )
        return _Results(batch.status, lines, problems)

    def _answer(self, request: ChoiceRequest, results: _Results) -> ChoiceResponse:
        prepared = self.prepare(request)
        raw: dict[str, JsonValue] = {"request": (prepared.line or {}).get("body")}
        outcome = results.outcome(custom_id(request), raw)
        if isinstance(outcome, str):
            return ChoiceResponse(choice=None, readout=None, raw=raw, error=outcome)
        return self.wire.response_from_body(outcome.body, request.prompt.labels, raw, 0.0)

    def _replies(self, request: ReplyRequest, results: _Results) -> ReplyResponse:
        prepared = self.prepare_reply(request)
        raw: dict[str, JsonValue] = {"request": (prepared.line or {}).get("body")}
        outcome = results.outcome(custom_id(request), raw)
        if isinstance(outcome, str):
            return ReplyResponse(texts=(), raw=raw, error=outcome)
        return self.wire.replies_from_body(outcome.body, request.n, raw, 0.0)

    def _failure(self, error: openai.APIError) -> BatchError:
        if isinstance(error, openai.APIStatusError) and error.status_code in FATAL_STATUS:
            raise UserError(f"model '{self.model_id}': batch API: {error_text(error)}")
        return BatchError(error_text(error), transient=transient_of(error) is not None)


@dataclass(frozen=True)
class _Answered:
    """A result line's response body (HTTP 200)."""

    body: JsonValue


@dataclass(frozen=True)
class _Results:
    """A finished batch's result lines, by custom id, and how the batch ended."""

    status: str
    lines: dict[str, dict[str, Any]]
    problems: str
    """The batch's own errors (why it failed, expired, ...), joined; '' when none."""

    def outcome(self, key: str, raw: dict[str, JsonValue]) -> _Answered | str:
        """The answered body of request `key`, or why it has none (its error body noted in
        `raw`)."""
        line = self.lines.get(key)
        if line is None:
            reason = f"the batch ended '{self.status}' without answering this request"
            return f"{reason}{': ' + self.problems if self.problems else ''}"
        response = line.get("response") or {}
        status = response.get("status_code")
        body = response.get("body")
        if status == 200 and body is not None:
            return _Answered(body)
        error = line.get("error") or (body or {}).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        raw["response"] = body if body is not None else line.get("error")
        return f"HTTP {status}: {message}" if status else str(message)
