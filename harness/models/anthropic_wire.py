"""The Messages API wire format: request bodies, replies and errors of Anthropic's API.

Shared by `anthropic:` single calls (`harness.models.anthropic_messages`) and its Message
Batches API (`harness.models.anthropic_batch`): `MessagesFormat` holds one model's exact
request bodies and reads its replies, so a batch line is the body a single call sends and its
result is read by the same code.

A body: the system messages joined into `system`; the user and assistant messages as they
are, a trailing assistant message being a prefill (its trailing whitespace removed, which
the API refuses); `max_tokens`; `temperature`, or, with extended thinking,
`thinking: {type: enabled, budget_tokens}` (thinking runs only at temperature 1, the API's
default, so none is sent). With `cache_prefix`, the first user message is one text block
marked `cache_control: {type: ephemeral}` when the system prompt and that message may reach
the shortest cacheable prefix; the API caches the prefix up to the mark and serves later
requests that share it at a tenth of the input price.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2

from mindshift.harness.http_retry_after import retry_after_s
from mindshift.harness.models.anthropic_settings import AnthropicSettings
from mindshift.harness.models.chat_answer import (
    ReplyError,
    answer_format_line,
    read_reply,
    reply_response,
)
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    Message,
    Transient,
    Usage,
)

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Besides 5xx (529: overloaded): the statuses another attempt may fix."""
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that no retry or later trial can fix (key, permission, model name): the run stops."""
CACHE_MIN_TOKENS = 1024
"""The shortest prefix any Claude model caches (others need 2048 or 4096 tokens)."""
CACHE_CHARS_PER_TOKEN = 3
"""A dense estimate of characters per token, so that no prefix the API might cache goes
unmarked (a mark on a shorter prefix is ignored by the API and costs nothing)."""
MESSAGES_PATH = "/v1/messages"


# ---------------------------------------------------------------- requests


def with_answer_format(messages: Sequence[Message], labels: Sequence[str]) -> list[Message]:
    """The messages with the answer-format line (`harness.models.chat_answer`) appended to
    the last user message: the choice-only answer of a trial."""
    out = list(messages)
    line = answer_format_line(labels)
    for index in range(len(out) - 1, -1, -1):
        if out[index].role == "user":
            out[index] = Message("user", f"{out[index].content}\n\n{line}")
            return out
    return [*out, Message("user", line)]


def _text_block(text: str, *, cached: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cached:
        block["cache_control"] = {"type": "ephemeral"}
    return block


def conversation(
    messages: Sequence[Message], *, cache_prefix: bool
) -> tuple[str | None, list[dict[str, Any]]]:
    """`system` and `messages` of a body: the system messages joined, the others in order;
    the first user message marked for caching when the prefix may be long enough."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    turns: list[dict[str, Any]] = [
        {"role": m.role, "content": m.content} for m in messages if m.role != "system"
    ]
    if turns and turns[-1]["role"] == "assistant":
        # A prefill: the API refuses one that ends in whitespace ("My answer is: ").
        prefill = str(turns[-1]["content"]).rstrip()
        if prefill:
            turns[-1] = {"role": "assistant", "content": prefill}
        else:
            turns.pop()
    if cache_prefix:
        first = next((turn for turn in turns if turn["role"] == "user"), None)
        if first is not None:
            prefix_chars = len(system or "") + len(str(first["content"]))
            if prefix_chars >= CACHE_MIN_TOKENS * CACHE_CHARS_PER_TOKEN:
                first["content"] = [_text_block(str(first["content"]), cached=True)]
    return system, turns


@dataclass(frozen=True)
class MessagesFormat:
    """The exact Messages API bodies of one `anthropic:` model, and how its replies are read
    (the same for a single call and a batch line)."""

    model: str
    """The model name sent in every body."""
    settings: AnthropicSettings

    def body(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int | None
    ) -> dict[str, Any]:
        """The request body of one reply (the exact JSON sent, without headers)."""
        system, turns = conversation(messages, cache_prefix=self.settings.cache_prefix)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.settings.request_tokens(max_tokens),
        }
        if system is not None:
            body["system"] = system
        body["messages"] = turns
        if self.settings.thinking_budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": self.settings.thinking_budget}
        else:
            body["temperature"] = temperature
        return body

    def answer_body(self, request: ChoiceRequest) -> dict[str, Any]:
        """The body of a trial's choice-only call: its prompt with the answer-format line."""
        messages = with_answer_format(request.prompt.messages, request.prompt.labels)
        return self.body(messages, temperature=request.temperature, max_tokens=None)

    def unsendable(self, temperature: float) -> str | None:
        """Why a call at this temperature cannot be sent (thinking takes only 1); None when
        it can. The config's check refuses such entries; a readout's own temperature is
        checked here."""
        if self.settings.thinking and temperature != 1.0:
            return f"extended thinking runs only at temperature 1, not {temperature:g}"
        return None

    def choice_response(
        self,
        message: JsonValue,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
        latency: float,
    ) -> ChoiceResponse:
        """The choice-only answer a Messages API reply gives (single calls and batch
        results): the label parsed from its text, no readout."""
        raw["response"] = message

        def read() -> tuple[str, None]:
            label, _ = read_reply(
                message_text(message),
                lambda: (),
                labels,
                choice_only=True,
                finish_reason=stop_reason(message),
                raw=raw,
            )
            return label, None

        return reply_response(read, raw, usage_of(message), latency)


# ---------------------------------------------------------------- replies


def _message_object(message: JsonValue) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise ReplyError("the response is not a message with content")
    return message


def message_text(message: JsonValue) -> str:
    """The text of a reply: its text blocks joined (thinking blocks left out)."""
    blocks = _message_object(message)["content"]
    return "".join(
        str(block.get("text", ""))
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text"
    )


def stop_reason(message: JsonValue) -> object:
    return message.get("stop_reason") if isinstance(message, dict) else None


def usage_of(message: JsonValue) -> Usage:
    """Token counts of a reply, in `harness.types.Usage`'s meaning.

    Anthropic counts the prompt in three parts (`input_tokens` after the last cache mark,
    `cache_read_input_tokens`, `cache_creation_input_tokens`): their sum is every prompt
    token, the reads the cached ones. Thinking is billed inside `output_tokens`; the part it
    took is `output_tokens_details.thinking_tokens` where the API reports it.
    """
    usage = message.get("usage") if isinstance(message, dict) else None
    if not isinstance(usage, dict):
        return Usage()

    def count(container: Any, key: str) -> int:
        value = container.get(key) if isinstance(container, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    cache_reads = count(usage, "cache_read_input_tokens")
    return Usage(
        input_tokens=count(usage, "input_tokens")
        + cache_reads
        + count(usage, "cache_creation_input_tokens"),
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(usage.get("output_tokens_details"), "thinking_tokens"),
        cached_tokens=cache_reads,
    )


def decode_body(response: httpx2.Response) -> JsonValue:
    """The JSON body of a response; ReplyError when it is no JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReplyError(f"malformed JSON in the response: {error}") from None


def body_excerpt(response: httpx2.Response, limit: int = 2000) -> str:
    """The start of a body that is no JSON, for the record."""
    return response.text[:limit]


# ---------------------------------------------------------------- errors


def status_message(error: anthropic.APIStatusError) -> str:
    """'HTTP 529: overloaded_error: Overloaded' for the record: the error object of the
    body (`{"type": "error", "error": {"type": ..., "message": ...}}`), else the SDK's
    message."""
    message, kind = error.message, None
    inner = error.body.get("error") if isinstance(error.body, dict) else None
    if isinstance(inner, dict):
        if isinstance(inner.get("message"), str):
            message = inner["message"]
        if isinstance(inner.get("type"), str):
            kind = inner["type"]
    return f"HTTP {error.status_code}: {kind + ': ' if kind else ''}{message}"


def transient_of(error: anthropic.APIError) -> Transient | None:
    """Whether another attempt may fix `error` (and the wait the server asked for).

    Network errors and timeouts, 408, 409, 429 and 5xx (529: overloaded) may pass; any other
    status (400, 413, 422, ...) says the request itself is wrong.
    """
    if isinstance(error, anthropic.APIConnectionError):  # includes APITimeoutError
        return Transient()
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            return Transient(
                rate_limited=status == 429,
                retry_after_s=retry_after_s(error.response.headers),
            )
    return None


def error_text(error: anthropic.APIError) -> str:
    """The record's error for an SDK error: the status and the API's message, or the kind."""
    if isinstance(error, anthropic.APIStatusError):
        return status_message(error)
    return f"{type(error).__name__}: {error}"


def fatal_fix(status: int, settings: AnthropicSettings) -> str:
    """What to do about a status that stops the run."""
    if status == 401:
        return f"check the key in {settings.api_key_env}"
    if status == 403:
        return "this key may not use this model (or this workspace)"
    return "check the model name (e.g. anthropic:claude-sonnet-4-5) and base_url"
