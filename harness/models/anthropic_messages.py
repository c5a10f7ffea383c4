"""`anthropic:<model>`: Anthropic's Messages API through the `anthropic` SDK's async client.

Anthropic returns no token log-probabilities, so confidence is read by the readouts that need
none (`harness.readouts`: sampling, verbal, verbal-2stage, ptrue by sampling), which send
free-text requests through `reply`; or the model runs for its choices only
(`choice_only = true`): `answer` appends the answer-format line to the last user message
(`harness.models.chat_answer`, as `openai:` and `gemini:` do) and parses the label from the
reply; the readout is empty. The answer is not prefilled, though the API allows it: extended
thinking refuses a prefill. A readout's own trailing assistant message is sent as a prefill.

Sampling. The Messages API has no `n` and no seed. A request for `n` replies is `n` requests
sent at once, and its samples are independent draws that no seed reproduces: a rerun of the
same trial draws new ones. The record keeps every reply, so nothing drawn is lost; the
request's seed is not sent anywhere.

Each call is one attempt (the SDK's retries are off): a failure that another attempt may fix
(429 with its Retry-After, 408, 409, 5xx with 529 "overloaded", a network error or timeout, a
body that is no JSON) is marked `Transient` for the runner's retry policy (`harness.retry`),
which counts every attempt and adapts the concurrency to 429s. A rejected key, a forbidden or
unknown model (401, 403, 404) stops the run; any other failure (400: the request itself is
wrong) is the call's record, with the API's message. The entry's `concurrency` counts calls:
a call of `n` replies puts `n` requests in flight.

Usage: every prompt token counts as input, cache reads and writes included, the reads as
`cached_tokens`; thinking is billed as output and reported as `reasoning_tokens`
(`harness.models.anthropic_wire.usage_of`). Prompt caching and the request bodies are
described in `harness.models.anthropic_wire`; the Message Batches API (`--batch`) in
`harness.models.anthropic_batch`; the entry's keys are checked by
`harness.models.anthropic_settings.AnthropicSettings` before the backend is built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2

from mindshift.harness.errors import UserError
from mindshift.harness.models.anthropic_batch import AnthropicBatch
from mindshift.harness.models.anthropic_settings import CAPABILITIES, AnthropicSettings, api_key
from mindshift.harness.models.anthropic_wire import (
    FATAL_STATUS,
    MESSAGES_PATH,
    MessagesFormat,
    body_excerpt,
    decode_body,
    error_text,
    fatal_fix,
    message_text,
    status_message,
    stop_reason,
    transient_of,
    usage_of,
)
from mindshift.harness.models.base import ModelBackend, ModelRef
from mindshift.harness.models.chat_answer import ANSWER_FORMAT, ReplyError, replies_of
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    Message,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

PREFLIGHT_RETRIES = 3
"""The preflight request alone is retried by the SDK: it is no trial, and a run should not
be refused for one 429 at its start."""
PREFLIGHT_PROMPT = "Reply with only the letter A."


def create(model: ModelRef, settings: AnthropicSettings) -> AnthropicBackend:
    """The backend of a validated entry (the registry's factory; tests replace it)."""
    return AnthropicBackend(model, settings)


@dataclass(frozen=True)
class _Reply:
    """One request's reply as received."""

    message: JsonValue
    latency_s: float


@dataclass(frozen=True)
class _Failed:
    """One request's failed attempt."""

    error: str
    transient: Transient | None
    raw: JsonValue
    latency_s: float


class AnthropicBackend(ModelBackend):
    """Messages API replies: free text for the readouts, or choices only."""

    max_batch_size = 1
    capabilities = CAPABILITIES

    def __init__(
        self,
        model: ModelRef,
        settings: AnthropicSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` replaces the SDK's own (tests pass one with a MockTransport)."""
        self.model = model
        self.settings = settings
        self.format = MessagesFormat(model.name, settings)
        # The key goes into the client and nowhere else: records hold the body only.
        # max_retries=0: the runner retries (harness.retry), counting every attempt.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key(settings.api_key_env, model.id, environ),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=0,
            http_client=http_client,
        )
        self.attempt_timeout_s = settings.timeout_s
        self._model_version: str | None = None

    async def _post(self, body: dict[str, Any], retries: int = 0) -> httpx2.Response:
        """POST one Messages body as it is (the JSON the record stores); the HTTP response.

        Through the SDK's generic `post` (auth, version header, timeouts, its error types),
        without the typed-params transform of `messages.create`."""
        if retries == 0:
            return await self._client.post(MESSAGES_PATH, body=body, cast_to=httpx2.Response)
        return await self._client.post(
            MESSAGES_PATH, body=body, cast_to=httpx2.Response, options={"max_retries": retries}
        )

    async def _attempt(self, body: dict[str, Any]) -> _Reply | _Failed:
        """One attempt at one request. Raises UserError for what stops the run."""
        started = time.perf_counter()
        try:
            response = await self._post(body)
        except anthropic.APIError as error:
            raw: JsonValue = None
            if isinstance(error, anthropic.APIStatusError):
                if error.status_code in FATAL_STATUS:
                    fix = fatal_fix(error.status_code, self.settings)
                    raise UserError(
                        f"model '{self.model.id}': {status_message(error)}; {fix}"
                    ) from None
                raw = error.body if isinstance(error.body, dict) else str(error.body)
            return _Failed(
                error_text(error), transient_of(error), raw, time.perf_counter() - started
            )
        latency = time.perf_counter() - started
        try:
            return _Reply(decode_body(response), latency)
        except ReplyError as error:
            # A body cut short or garbled on the way: the same request may come back whole.
            return _Failed(str(error), Transient(), body_excerpt(response), latency)

    async def preflight(self, *, logprobs: bool = True) -> None:
        """One tiny request shaped like a trial's (thinking included): a wrong key, model
        name or setting stops the run here, with the fix, before anything is spent.
        (Anthropic gives no logprobs: `logprobs` changes nothing.)"""
        body = self.format.body((Message("user", PREFLIGHT_PROMPT),), temperature=1.0, max_tokens=1)
        where = f"model '{self.model.id}' ({self.model.spec})"
        try:
            response = await self._post(body, retries=PREFLIGHT_RETRIES)
        except anthropic.APIStatusError as error:
            fix = fatal_fix(error.status_code, self.settings)
            hint = f"; {fix}" if error.status_code in FATAL_STATUS else ""
            raise UserError(
                f"{where}: preflight request failed: {status_message(error)}{hint}"
            ) from None
        except anthropic.APIConnectionError as error:
            raise UserError(f"{where}: cannot reach the API: {error}") from None
        try:
            message = decode_body(response)
            message_text(message)
        except ReplyError as error:
            raise UserError(f"{where}: unreadable preflight response: {error}") from None
        if isinstance(message, dict) and isinstance(message.get("model"), str):
            self._model_version = message["model"]

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        if len(requests) == 1:  # the usual case: no task to spawn
            return [await self._answer_one(requests[0])]
        return list(await asyncio.gather(*(self._answer_one(request) for request in requests)))

    async def _answer_one(self, request: ChoiceRequest) -> ChoiceResponse:
        body = self.format.answer_body(request)
        raw: dict[str, JsonValue] = {"request": body}
        problem = self.format.unsendable(request.temperature)
        if problem is not None:
            return ChoiceResponse(choice=None, readout=None, raw=raw, error=problem)
        outcome = await self._attempt(body)
        if isinstance(outcome, _Failed):
            raw["response"] = outcome.raw
            return ChoiceResponse(
                choice=None,
                readout=None,
                raw=raw,
                latency_s=outcome.latency_s,
                error=outcome.error,
                transient=outcome.transient,
            )
        return self.format.choice_response(
            outcome.message, request.prompt.labels, raw, outcome.latency_s
        )

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        return list(await asyncio.gather(*(self._reply_one(request) for request in requests)))

    async def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        body = self.format.body(
            request.messages, temperature=request.temperature, max_tokens=request.max_tokens
        )
        problem = self.format.unsendable(request.temperature)
        if problem is not None:
            return ReplyResponse(texts=(), raw={"request": body}, error=problem)
        # No `n` in the Messages API: n requests at once, each an independent draw.
        outcomes = await asyncio.gather(*(self._attempt(body) for _ in range(request.n)))
        return replies_response(body, outcomes)

    def batch_api(self) -> AnthropicBatch:
        """The Message Batches API (`--batch`), through this backend's client."""
        return AnthropicBatch(self._client, self.format, self.model.id)

    def describe(self) -> dict[str, str]:
        facts = {
            "provider": self.model.provider,
            "model": self.model.name,
            # The client's, not the config's: the SDK also reads ANTHROPIC_BASE_URL.
            "base_url": str(self._client.base_url),
            "mode": "choice-only" if self.settings.choice_only else "free-text replies",
            "reply_tokens": str(self.settings.reply_tokens(None)),
            "cache_prefix": str(self.settings.cache_prefix).lower(),
            "sampling": "n requests per call; no seed parameter: samples are not reproducible",
            "anthropic_sdk": anthropic.__version__,
        }
        if self.settings.choice_only:
            facts["answer_format"] = ANSWER_FORMAT
        if self.settings.thinking_budget is not None:
            facts["thinking_budget"] = str(self.settings.thinking_budget)
        if self._model_version is not None:
            facts["model_version"] = self._model_version
        return facts

    async def aclose(self) -> None:
        await self._client.close()


def replies_response(body: dict[str, Any], outcomes: Sequence[_Reply | _Failed]) -> ReplyResponse:
    """One ReplyResponse from the n requests of one reply: every text, or the failure.

    The usage is that of every request answered (each was billed, even when another of the
    n failed). A failed request fails the reply, transiently only when each failed
    request's failure was (a request the API refused would be refused again). A reply
    without text (cut off while thinking, a refusal) is an empty sample, which the readout
    counts as unreadable; only n replies all without text fail (`chat_answer.replies_of`).
    """
    raw: dict[str, JsonValue] = {
        "request": body,
        "responses": [
            outcome.message if isinstance(outcome, _Reply) else outcome.raw for outcome in outcomes
        ],
    }
    replies = [outcome for outcome in outcomes if isinstance(outcome, _Reply)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, _Failed)]
    usage = _sum_usage(replies)
    latency = max((outcome.latency_s for outcome in outcomes), default=0.0)
    texts: list[str] = []
    for one in replies:
        try:
            texts.append(message_text(one.message))
        except ReplyError as unreadable:
            failures.append(_Failed(str(unreadable), None, one.message, one.latency_s))
    if not failures:
        reasons = [stop_reason(one.message) for one in replies]
        try:
            sampled = replies_of(texts, len(outcomes), reasons)
        except ReplyError as empty:
            return ReplyResponse(
                texts=(), raw=raw, usage=usage, latency_s=latency, error=str(empty)
            )
        return ReplyResponse(texts=sampled, raw=raw, usage=usage, latency_s=latency)
    error = failures[0].error
    if len(outcomes) > 1:
        error = f"{error} ({len(failures)} of {len(outcomes)} requests failed)"
    return ReplyResponse(
        texts=(),
        raw=raw,
        usage=usage,
        latency_s=latency,
        error=error,
        transient=_joint_transient(failures),
    )


def _sum_usage(replies: Sequence[_Reply]) -> Usage:
    parts = [usage_of(one.message) for one in replies]
    return Usage(
        input_tokens=sum(part.input_tokens for part in parts),
        output_tokens=sum(part.output_tokens for part in parts),
        reasoning_tokens=sum(part.reasoning_tokens for part in parts),
        cached_tokens=sum(part.cached_tokens for part in parts),
    )


def _joint_transient(failures: Sequence[_Failed]) -> Transient | None:
    """Transient when every failure is: rate-limited if any was, waiting the longest wait
    asked for."""
    marks = [failure.transient for failure in failures]
    if any(mark is None for mark in marks):
        return None
    present = [mark for mark in marks if mark is not None]
    waits = [mark.retry_after_s for mark in present if mark.retry_after_s is not None]
    return Transient(
        rate_limited=any(mark.rate_limited for mark in present),
        retry_after_s=max(waits) if waits else None,
    )
