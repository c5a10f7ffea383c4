"""The chat-completions wire format: request bodies, replies and errors of OpenAI's API.

Shared by `openai:` single calls (`harness.models.openai_chat`), its batch API
(`harness.models.openai_batch`) and vLLM's OpenAI-compatible server (`harness.models.vllm`),
which speaks the same format. `ChatCompletionsFormat` holds one `openai:` model's exact
request bodies and reads its replies, so a batch reads an answer exactly as a single call
does. A free-text reply request (`ReplyRequest`) is one body with `n`: OpenAI samples the
`n` replies in one request, bills the prompt once and reports the replies' tokens summed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from mindshift.harness.http_retry_after import retry_after_s
from mindshift.harness.models.chat_answer import (
    ReplyError,
    TokenLogprob,
    answer_format_line,
    chat_messages,
    check_single_character_labels,
    read_reply,
    replies_of,
    reply_response,
)
from mindshift.harness.models.logprob_check import PROBE_LABELS, PROBE_QUESTION
from mindshift.harness.models.openai_settings import OpenAISettings, reasons
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    OptionReadout,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Besides 5xx: the statuses another attempt may fix."""
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that no retry or later trial can fix (key, permission, model name): the run stops."""


# ---------------------------------------------------------------- replies


def first_choice(body: JsonValue) -> dict[str, Any]:
    """`choices[0]` of a chat completion, checked to be an object."""
    if not isinstance(body, dict):
        raise ReplyError("the response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ReplyError("the response has no choices")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ReplyError("the response's first choice is not an object")
    return choice


def all_choices(body: JsonValue) -> list[dict[str, Any]]:
    """Every choice of a chat completion (one per sampled reply), in the order of their
    `index`; raises ReplyError when there are none or one is not an object."""
    first_choice(body)  # the same checks, and the same messages, as a single answer's
    choices = body["choices"]
    if not all(isinstance(choice, dict) for choice in choices):
        raise ReplyError("a choice of the response is not an object")

    def index(pair: tuple[int, dict[str, Any]]) -> int:
        position, choice = pair
        value = choice.get("index")
        return value if isinstance(value, int) and not isinstance(value, bool) else position

    return [choice for _, choice in sorted(enumerate(choices), key=index)]


def reply_text(choice: Mapping[str, Any]) -> str:
    """The text of a choice's message ('' when there is none)."""
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _number(value: Any, where: str) -> float:
    # bool is an int in Python; a logprob of `true` is malformed, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplyError(f"{where} is not a number: {value!r}")
    return float(value)


def token_logprobs(choice: Mapping[str, Any]) -> list[TokenLogprob]:
    """`logprobs.content` of a choice, parsed; raises ReplyError when absent or malformed."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        raise ReplyError("the response carries no logprobs")
    parsed = []
    for position, entry in enumerate(content):
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            raise ReplyError(f"logprobs entry {position} is malformed")
        top_entries = entry.get("top_logprobs")
        if not isinstance(top_entries, list):
            raise ReplyError(f"logprobs entry {position} has no top_logprobs")
        top = []
        for alternative in top_entries:
            if not isinstance(alternative, dict) or not isinstance(alternative.get("token"), str):
                raise ReplyError(f"a top_logprobs entry at position {position} is malformed")
            top.append(
                (
                    str(alternative["token"]),
                    _number(alternative.get("logprob"), f"top logprob at position {position}"),
                )
            )
        parsed.append(
            TokenLogprob(
                token=str(entry["token"]),
                logprob=_number(entry.get("logprob"), f"logprob at position {position}"),
                top=top,
            )
        )
    return parsed


def usage_of(body: JsonValue) -> Usage:
    """Token counts of a chat completion (missing counts are 0)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return Usage()

    def count(container: Any, key: str) -> int:
        value = container.get(key) if isinstance(container, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Usage(
        input_tokens=count(usage, "prompt_tokens"),
        output_tokens=count(usage, "completion_tokens"),
        reasoning_tokens=count(usage.get("completion_tokens_details"), "reasoning_tokens"),
        cached_tokens=count(usage.get("prompt_tokens_details"), "cached_tokens"),
    )


def decode_body(response: httpx2.Response) -> JsonValue:
    """The JSON body of a response; ReplyError when it is no JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReplyError(f"malformed JSON in the response: {error}") from None


async def post_chat_completion(
    client: AsyncOpenAI, body: dict[str, Any], retries: int = 0
) -> httpx2.Response:
    """POST a chat-completions body as it is; the raw HTTP response (SDK errors raised).

    `retries`: the SDK's own retries, for the preflight only (trial calls are retried by
    the runner, which counts them)."""
    if retries == client.max_retries:
        # The client's own setting: no per-request options for the SDK to merge (the trial
        # calls' case, as the raw `client.post` loop of bench/bench_throughput.py sends).
        return await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
    return await client.post(
        "/chat/completions", body=body, cast_to=httpx2.Response, options={"max_retries": retries}
    )


def body_excerpt(response: httpx2.Response, limit: int = 2000) -> str:
    """The start of a body that is no JSON, for the record."""
    return response.text[:limit]


# ---------------------------------------------------------------- errors


def status_message(error: openai.APIStatusError) -> str:
    """'HTTP 429: <the API's message>' for the record."""
    body = error.body
    message = error.message
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            message = inner["message"]
    return f"HTTP {error.status_code}: {message}"


def transient_of(error: openai.APIError) -> Transient | None:
    """Whether another attempt may fix `error` (and the wait the server asked for).

    Network errors and timeouts, 408, 409, 429 and 5xx may pass; any other status (400,
    422, ...) says the request itself is wrong, and a response the SDK could not validate
    would come back the same.
    """
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return Transient()
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            return Transient(
                rate_limited=status == 429,
                retry_after_s=retry_after_s(error.response.headers),
            )
    return None


def error_text(error: openai.APIError) -> str:
    """The record's error for an SDK error: the status and the API's message, or the kind."""
    if isinstance(error, openai.APIStatusError):
        return status_message(error)
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- one model's requests


@dataclass(frozen=True)
class ChatCompletionsFormat:
    """The exact chat-completions bodies of one `openai:` model, and how its replies are read
    (the same for a single call and a batch line)."""

    model: str
    """The model name sent in every body."""
    settings: OpenAISettings

    @property
    def reasons(self) -> bool:
        """Whether this model spends hidden reasoning tokens (`openai_settings.reasons`)."""
        return reasons(self.model, self.settings)

    def payload(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        seed: int,
        logprobs: bool = True,
    ) -> dict[str, Any]:
        """The request body sent for one call (the exact JSON, without headers).
        `logprobs`: ask for them (unless choice-only); False for a request that reads none,
        which a reasoning model would refuse if they were asked."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_completion_tokens": self.settings.completion_tokens,
            "seed": seed,
        }
        if self.settings.choice_only or not logprobs:
            self._sampling(body, temperature)
        else:
            body["temperature"] = temperature
            body["logprobs"] = True
            body["top_logprobs"] = self.settings.top_k
            if self.settings.reasoning_effort is not None:
                # gpt-5.1 and later give logprobs only with their reasoning off ("none").
                body["reasoning_effort"] = self.settings.reasoning_effort
        return body

    def _sampling(self, body: dict[str, Any], temperature: float) -> None:
        """The temperature and reasoning effort of a request that reads no logprobs."""
        # Reasoning models accept only their default temperature (1); omitting it there is
        # the same request, and any other value is still sent, for the API to refuse.
        if temperature != 1.0 or not (self.settings.choice_only or self.reasons):
            body["temperature"] = temperature
        if self.settings.reasoning_effort is not None:
            body["reasoning_effort"] = self.settings.reasoning_effort

    def probe_body(self) -> dict[str, Any]:
        """The preflight's logprob probe (`harness.models.logprob_check`): the probe
        question in the trials' answer format, read as a trial is, whatever the mode."""
        content = f"{PROBE_QUESTION}\n\n{answer_format_line(PROBE_LABELS)}"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_completion_tokens": self.settings.answer_tokens,
            "seed": 0,
            "temperature": 1.0,
            "logprobs": True,
            "top_logprobs": self.settings.top_k,
        }
        if self.settings.reasoning_effort is not None:
            body["reasoning_effort"] = self.settings.reasoning_effort
        return body

    def reply_body(self, request: ReplyRequest) -> dict[str, Any]:
        """The body of a free-text reply request: its messages as the readout wrote them,
        `n` replies, no logprobs; a reasoning model gets room to think."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [message.to_json() for message in request.messages],
            "max_completion_tokens": self.settings.reply_tokens(
                request.max_tokens, reasoning=self.reasons
            ),
            "seed": request.seed,
            "n": request.n,
        }
        self._sampling(body, request.temperature)
        return body

    def replies_from_body(
        self, body_json: JsonValue, n: int, raw: dict[str, JsonValue], latency: float
    ) -> ReplyResponse:
        """The replies a chat completion's JSON body gives (single calls and batch results):
        one text per choice, in order; a failure when none has any text."""
        raw["response"] = body_json
        usage = usage_of(body_json)
        try:
            choices = all_choices(body_json)
            texts = replies_of(
                [reply_text(choice) for choice in choices],
                n,
                [choice.get("finish_reason") for choice in choices],
            )
        except ReplyError as error:
            return ReplyResponse(
                texts=(), raw=raw, usage=usage, latency_s=latency, error=str(error)
            )
        return ReplyResponse(texts=texts, raw=raw, usage=usage, latency_s=latency)

    def request_body(self, request: ChoiceRequest) -> dict[str, Any]:
        """The body of a trial's call: its prompt with the answer-format line."""
        return self.payload(
            chat_messages(request.prompt), temperature=request.temperature, seed=request.seed
        )

    def unanswerable(self, request: ChoiceRequest) -> str | None:
        """Why this request cannot be read (labels longer than one character, with
        logprobs); None when it can."""
        if self.settings.choice_only:
            return None
        try:
            check_single_character_labels(request.prompt.labels)
        except ReplyError as error:
            return str(error)
        return None

    def response_from_body(
        self,
        body_json: JsonValue,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
        latency: float,
    ) -> ChoiceResponse:
        """The answer a chat completion's JSON body gives (single calls and batch results)."""
        raw["response"] = body_json
        return reply_response(
            lambda: self._read(body_json, labels, raw), raw, usage_of(body_json), latency
        )

    def _read(
        self, body: JsonValue, labels: Sequence[str], raw: dict[str, JsonValue]
    ) -> tuple[str, OptionReadout | None]:
        choice = first_choice(body)
        return read_reply(
            reply_text(choice),
            lambda: token_logprobs(choice),
            labels,
            choice_only=self.settings.choice_only,
            finish_reason=choice.get("finish_reason"),
            raw=raw,
        )
