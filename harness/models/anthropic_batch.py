"""Anthropic's Message Batches API for `anthropic:` models (`mindshift run --batch`).

A batch is one `POST /v1/messages/batches` of requests (`custom_id`, `params`: the exact
Messages body a single call sends); `messages.batches.retrieve` reports its
`processing_status` (in_progress, canceling, ended), and once it has ended its results (a
JSONL file, in no particular order) hold one line per request: `succeeded` with the message,
`errored` with the API's error, `expired` or `canceled`. Answers are read by the same code as
single calls (`MessagesFormat.choice_response`). At most 100,000 requests and 256 MB per
batch; results stay available for 29 days. Batches cost half the standard price, and prompt
caching works inside them on a best-effort basis.

Finding a batch again. Anthropic keeps no metadata or name with a batch, and shows its
requests only in its results. So every request of a batch carries the batch's tag (16 hex
digits of the token's hash) at the end of its `custom_id`: `<trial id>-<stage>-<tag>`. `find`
lists the recent batches and reads the first result line of each ended one; a batch still
in progress cannot be read yet, so `find` waits for those listed when it started and reads
each as it ends (polling every `FIND_POLL_S`). It thus returns once the lost batch, if it was
created, has ended (the run would wait for it anyway to collect it), and returns None only
when no listed batch carries the tag. If the lost batch was never created while other
batches of the workspace are running, that wait is spent for nothing: the rare price of a
stop between the provider's answer and the log's write, paid in time rather than twice in
money.

Free-text replies (the readouts without logprobs) go into batches too: `prepare_reply` and
`collect_replies` are `prepare` and `collect` for `ReplyRequest`s. A batch line is one
request and one reply: a reply of n > 1 samples is refused (the readouts send n single
replies to a provider without `n`), and each single reply's `custom_id` holds its kind and
seed, so the n replies of one trial can share a batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anthropic
import httpx2
from anthropic import AsyncAnthropic
from anthropic.types.messages import MessageBatch

from mindshift.harness.batch_api import BatchError, BatchStatus, Prepared, PreparedReply, custom_id
from mindshift.harness.errors import UserError
from mindshift.harness.models.anthropic_wire import (
    FATAL_STATUS,
    MessagesFormat,
    error_text,
    message_text,
    stop_reason,
    transient_of,
    usage_of,
)
from mindshift.harness.models.chat_answer import ReplyError, replies_of
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    ReplyRequest,
    ReplyResponse,
)

BATCHES_PATH: Final = "/v1/messages/batches"
MAX_REQUESTS = 100_000
MAX_BYTES = 200 * 1024 * 1024
"""Below the API's 256 MB, leaving room for the tags `submit` adds to the custom ids."""
RESULTS_KEPT = timedelta(days=29)
"""How long Anthropic keeps a batch's results: older batches cannot be read (nor collected)."""
LIST_LIMIT = 500
"""How many recent batches `find` looks through."""
FIND_POLL_S = 30.0
"""How often `find` asks about the batches still in progress it is waiting for."""
TAG_CHARS = 16
CUSTOM_ID_CHARS = 64
"""The API's limit on a custom id (letters, digits, '_' and '-')."""
_PLAIN_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{CUSTOM_ID_CHARS - TAG_CHARS - 1}}}")
_KIND_CODES = {
    "answer": "a",
    "answer-and-confidence": "s",
    "confidence": "c",
    "true-or-false": "t",
}


def token_tag(token: str) -> str:
    """What every custom id of the batch submitted with `token` ends with (after a '-')."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:TAG_CHARS]


def line_id(key: str) -> str:
    """A custom id for `key` that leaves room for the tag: `key` itself when it is short
    and plain (every trial id is), else a hash of it."""
    if _PLAIN_ID.fullmatch(key):
        return key
    return "h" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def reply_key(request: ReplyRequest) -> str:
    """The id of a single reply's line: its call, its kind and its seed (the n single
    replies of one sampled call differ in their seeds)."""
    code = _KIND_CODES.get(request.asked.kind, "x")
    return f"{request.trial_id}-{request.stage}-{code}{request.seed:x}"


def untagged(tagged: str) -> str:
    """A result's custom id without the batch's tag."""
    key, _, tag = tagged.rpartition("-")
    return key if key and len(tag) == TAG_CHARS else tagged


class AnthropicBatch:
    """The Message Batches API for one `anthropic:` model: its client, its request format,
    its id."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, client: AsyncAnthropic, wire: MessagesFormat, model_id: str) -> None:
        """`client`: the model's SDK client, which makes one attempt per request, like every
        call (`harness.batch_runner` retries); `model_id` names the model in messages."""
        self._client = client
        self.wire = wire
        self.model_id = model_id
        self.find_poll_s = FIND_POLL_S

    # ------------------------------------------------------------ lines

    def prepare(self, request: ChoiceRequest) -> Prepared:
        problem = self.wire.unsendable(request.temperature)
        if problem is not None:
            failure = ChoiceResponse(choice=None, readout=None, raw={}, error=problem)
            return Prepared(request, None, failure)
        line = {"custom_id": line_id(custom_id(request)), "params": self.wire.answer_body(request)}
        return Prepared(request, line)

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        problem = self.wire.unsendable(request.temperature)
        if request.n != 1:
            problem = (
                f"a batch line holds one reply, not n = {request.n}: send n single replies "
                "(Anthropic has no n)"
            )
        if problem is not None:
            return PreparedReply(request, None, ReplyResponse(texts=(), raw={}, error=problem))
        line = {"custom_id": line_id(reply_key(request)), "params": self._reply_body(request)}
        return PreparedReply(request, line)

    def _reply_body(self, request: ReplyRequest) -> dict[str, Any]:
        return self.wire.body(
            request.messages, temperature=request.temperature, max_tokens=request.max_tokens
        )

    # ------------------------------------------------------------ the batch

    async def submit(self, lines: Sequence[Prepared | PreparedReply], token: str) -> str:
        tag = token_tag(token)
        requests = [
            {"custom_id": f"{p.line['custom_id']}-{tag}", "params": p.line["params"]}
            for p in lines
            if p.line is not None
        ]
        try:
            batch = await self._client.post(
                BATCHES_PATH, body={"requests": requests}, cast_to=MessageBatch
            )
        except anthropic.APIError as error:
            raise self._failure(error) from None
        return batch.id

    async def find(self, token: str) -> str | None:
        tag = token_tag(token)
        oldest = datetime.now(UTC) - RESULTS_KEPT
        waiting: list[str] = []
        try:
            seen = 0
            async for batch in self._client.messages.batches.list(limit=100):
                if batch.created_at < oldest or seen >= LIST_LIMIT:
                    break
                seen += 1
                if batch.processing_status != "ended":
                    waiting.append(batch.id)
                elif await self._carries(batch, tag):
                    return batch.id
            # Batches in progress show no requests: read each once it has ended.
            while waiting:
                await asyncio.sleep(self.find_poll_s)
                still = []
                for batch_id in waiting:
                    batch = await self._client.messages.batches.retrieve(batch_id)
                    if batch.processing_status != "ended":
                        still.append(batch_id)
                    elif await self._carries(batch, tag):
                        return batch.id
                waiting = still
        except (anthropic.AnthropicError, httpx2.HTTPError, ValueError) as error:
            raise self._failure(error) from None
        return None

    async def _carries(self, batch: MessageBatch, tag: str) -> bool:
        """Whether an ended batch's requests carry `tag` (its first result line says)."""
        if batch.results_url is None:
            return False
        results = await self._client.messages.batches.results(batch.id)
        try:
            async for line in results:
                return line.custom_id.endswith(f"-{tag}")
            return False
        finally:
            await results.close()

    async def status(self, batch_id: str) -> BatchStatus:
        try:
            batch = await self._client.messages.batches.retrieve(batch_id)
        except anthropic.APIError as error:
            raise self._failure(error) from None
        return BatchStatus(
            state=batch.processing_status,
            done=batch.processing_status == "ended",
            counts=batch.request_counts.model_dump(),
        )

    async def _results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """The result lines of an ended batch, by custom id without the tag."""
        lines: dict[str, dict[str, Any]] = {}
        try:
            async for line in await self._client.messages.batches.results(batch_id):
                lines[untagged(line.custom_id)] = line.to_dict(mode="json")
        except (anthropic.AnthropicError, httpx2.HTTPError, ValueError) as error:
            raise self._failure(error) from None
        return lines

    async def collect(
        self, batch_id: str, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        lines = await self._results(batch_id)
        answers = []
        for request in requests:
            body = self.wire.answer_body(request)
            raw: dict[str, JsonValue] = {"request": body}
            line = lines.get(line_id(custom_id(request)))
            message, problem = _outcome(line)
            if problem is not None:
                raw["response"] = (line or {}).get("result")
                answers.append(ChoiceResponse(choice=None, readout=None, raw=raw, error=problem))
            else:
                answers.append(self.wire.choice_response(message, request.prompt.labels, raw, 0.0))
        return answers

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        """The reply to each request of a finished batch, in order (a failure for any request
        the batch did not answer)."""
        lines = await self._results(batch_id)
        replies = []
        for request in requests:
            line = lines.get(line_id(reply_key(request)))
            message, problem = _outcome(line)
            raw: dict[str, JsonValue] = {
                "request": self._reply_body(request),
                "responses": [message if problem is None else (line or {}).get("result")],
            }
            if problem is None:
                try:
                    texts = replies_of((message_text(message),), 1, (stop_reason(message),))
                except ReplyError as error:
                    problem = str(error)
            if problem is not None:
                usage = usage_of(message)  # an empty reply was billed too
                replies.append(ReplyResponse(texts=(), raw=raw, usage=usage, error=problem))
            else:
                replies.append(ReplyResponse(texts=texts, raw=raw, usage=usage_of(message)))
        return replies

    def _failure(self, error: Exception) -> BatchError:
        if isinstance(error, anthropic.APIStatusError) and error.status_code in FATAL_STATUS:
            raise UserError(f"model '{self.model_id}': batch API: {error_text(error)}")
        if isinstance(error, anthropic.APIError):
            return BatchError(error_text(error), transient=transient_of(error) is not None)
        if isinstance(error, httpx2.HTTPError | json.JSONDecodeError):
            # A results file cut short on the way: reading it again may succeed.
            return BatchError(f"{type(error).__name__}: {error}", transient=True)
        return BatchError(f"{type(error).__name__}: {error}", transient=False)


def _outcome(line: dict[str, Any] | None) -> tuple[JsonValue, str | None]:
    """The message of a result line, or why there is none."""
    if line is None:
        return None, "the batch ended without answering this request"
    result = line.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded" and isinstance(result, dict):
        return result.get("message"), None
    if kind == "errored" and isinstance(result, dict):
        outer = result.get("error")
        inner = outer.get("error") if isinstance(outer, dict) else None
        if isinstance(inner, dict):
            return None, f"batch error {inner.get('type')}: {inner.get('message')}"
        return None, f"batch error: {outer}"
    if kind == "expired":
        return None, "the batch expired before answering this request"
    if kind == "canceled":
        return None, "the batch was canceled before answering this request"
    return None, f"unreadable batch result: {json.dumps(result)[:200]}"
