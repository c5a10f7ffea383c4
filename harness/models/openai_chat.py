"""`openai:<model>`: OpenAI's chat completions API (or any OpenAI-compatible endpoint).

The answer format. Chat completions cannot prefill the assistant turn, so the prompt's answer
prefix ("My answer is:") cannot be written before the model's first token. Instead one line,
`ANSWER_FORMAT`, is appended to the last user message, asking for the option label alone, so
that the label is the reply's first token. Confidence is read from the `top_logprobs` (up to
20, OpenAI's limit) at the answer position: the first generated token that spells an option
label, which is the first token whenever the model follows the format (a reply that starts
"**" or "The answer is" is read at its label token, conditional on what came before; the
position is stored). The readout is the one every backend shares (`harness.readout`: token
variants merged, 0.0 is certainty, labels missing from the top-k censored with their upper
bound, the mass on other tokens kept). The exact request body is stored with each call.

The sampled answer is the provider's own: the label token the API generated (at the
request's temperature, with the request's seed passed as `seed`). It is not resampled here:
OpenAI samples from the full distribution, of which this backend sees only the top-k.

Reasoning models (o1, o3, o4-mini, the gpt-5 family, ...) return no logprobs. They run only in
choice-only mode (`choice_only = true`): the choice is parsed from the reply (its first word,
or the word after "answer is") and the readout is empty, so the analysis uses them for
change-of-mind rates only. A reasoning model without `choice_only`, or any model whose
preflight request comes back without logprobs, stops the run before it spends anything, with
the fix in the message.

Labels must be single characters here: with no prompt log-probabilities, a longer option
cannot be scored, and a call that meets one fails with that reason (no number is invented).
Each call is one attempt: the SDK's own retries are off, and a failure that another attempt
may fix (429, 408, 409, 5xx, a network error or timeout, a body that is no JSON) is marked
`Transient` with the Retry-After it carried, for the runner's retry policy (`harness.retry`),
which counts attempts, adapts the concurrency to 429s and records every attempt's error.
A failure is a record with its reason; a rejected key or an unknown model (401, 403, 404)
stops the run.
The helpers that read the chat-completions wire format are shared with `harness.models.vllm`
and the answer format with `harness.models.gemini`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from harness.batch_api import BatchApi
from harness.config import ModelSection, reject_unusable_keys
from harness.errors import ConfigError, UserError
from harness.models.base import Capabilities, ModelBackend
from harness.readout import ReadoutError, label_of_token, readout_from_top_logprobs
from harness.retry import retry_after_s
from harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    OptionReadout,
    Prompt,
    Transient,
    Usage,
)

PROVIDER = "openai"
MAX_TOP_LOGPROBS = 20
"""The most alternatives per position OpenAI returns."""
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_TIMEOUT_S = 120.0
PREFLIGHT_RETRIES = 3
"""The preflight request alone is retried by the SDK: it is no trial, and a run should not
be refused for one 429 at its start."""
ANSWER_TOKENS = 8
"""Default output budget with logprobs: the label comes first; a few more tokens let a reply
like "**A**" still be read."""
CHOICE_ONLY_TOKENS = 4096
"""Default budget in choice-only mode: a reasoning model's hidden reasoning counts against it."""
RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Besides 5xx: the statuses another attempt may fix."""
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that no retry or later trial can fix (key, permission, model name): the run stops."""
ANSWER_FORMAT = "Reply with only the label of your answer: {labels}."
"""Appended to the last user message so that the label is the reply's first token."""
REASONING_MODELS = re.compile(r"^(o\d+(-|$)|gpt-5(?!-chat)|codex)", re.IGNORECASE)
"""OpenAI model names that return no logprobs (reasoning models)."""

CAPABILITIES = Capabilities(
    logprobs=True, top_k_limit=MAX_TOP_LOGPROBS, prefill=False, prompt_logprobs=False, batch=True
)
CHOICE_ONLY_CAPABILITIES = Capabilities(
    logprobs=False,
    top_k_limit=None,
    prefill=False,
    prompt_logprobs=False,
    batch=True,
    choice_only=True,
)
USABLE_KEYS = frozenset(
    {
        "base_url",
        "api_key_env",
        "choice_only",
        "top_logprobs",
        "max_tokens",
        "timeout_s",
        "max_retries",
        "deadline_s",
        "retry_backoff_s",
        "reasoning_effort",
    }
)


class ReplyError(ValueError):
    """A response that cannot be read as an answer; the message goes into the call's record."""


# ---------------------------------------------------------------- the chat-completions format


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the alternatives returned for it."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


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


def check_single_character_labels(labels: Sequence[str]) -> None:
    """Chat APIs read one token: a longer label cannot be scored without prompt logprobs."""
    long = [label for label in labels if len(label) != 1]
    if long:
        raise ReplyError(
            f"labels {long} are longer than one character: without prompt log-probabilities "
            "only single-character labels can be read from the first token"
        )


# ---------------------------------------------------------------- the answer format


def answer_format_line(labels: Sequence[str]) -> str:
    """The line that asks for the bare label, e.g. 'Reply with only ...: A or B.'."""
    listed = ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]
    return ANSWER_FORMAT.format(labels=listed)


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """The prompt's messages with the answer-format line appended to the last user message."""
    messages = [message.to_json() for message in prompt.messages]
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] = f"{message['content']}\n\n{answer_format_line(prompt.labels)}"
            break
    return messages


_LEADING_LABEL = re.compile(r"^[\s*_`\"'(\[]*([^\s*_`\"'()\[\].:,;!?]+)")
_ANSWER_IS = re.compile(r"answer(?:\s+is)?\s*[:\-]?\s*[*_`\"'(\[]*([^\s*_`\"'()\[\].:,;!?]+)", re.I)


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a reply gives: the word it starts with, else the word after 'answer (is):'.

    Only whole words count ("A." and "**B**" do; "Apple" does not), so an article "A" that
    opens a sentence is not read as option A unless the sentence is that word alone.
    """
    for pattern in (_LEADING_LABEL, _ANSWER_IS):
        for match in pattern.finditer(text):
            if match.group(1) in labels:
                return match.group(1)
    return None


def read_answer_token(
    tokens: Sequence[TokenLogprob], labels: Sequence[str]
) -> tuple[OptionReadout, str, int]:
    """The readout at the answer position, the label generated there, and the position.

    The answer position is the first generated token that spells an option label: the
    first token when the model follows the answer format, a later one after a stray
    "**" or "The answer is". The readout is conditional on the tokens before it.
    """
    for position, token in enumerate(tokens):
        label = label_of_token(token.token, labels)
        if label is not None:
            try:
                readout = readout_from_top_logprobs(token.top, labels)
            except ReadoutError as error:
                raise ReplyError(str(error)) from None
            return readout, label, position
    text = "".join(token.token for token in tokens)
    raise ReplyError(f"no generated token is an option label: {text!r}")


def read_reply(
    text: str,
    tokens: Callable[[], Sequence[TokenLogprob]],
    labels: Sequence[str],
    *,
    choice_only: bool,
    finish_reason: object,
    raw: dict[str, JsonValue],
) -> tuple[str, OptionReadout | None]:
    """The answer of a chat reply (shared by `openai:` and `gemini:`): in choice-only mode
    the label parsed from its text and no readout; otherwise the readout at the answer
    token, whose position is noted in `raw`. `tokens` is called only when it is needed."""
    if not text.strip():
        raise ReplyError(f"empty reply (finish_reason {finish_reason!r})")
    if choice_only:
        label = parse_label(text, labels)
        if label is None:
            raise ReplyError(f"no option label in the reply {text!r}")
        return label, None
    readout, label, position = read_answer_token(tokens(), labels)
    raw["answer_position"] = position
    return label, readout


def reply_response(
    read: Callable[[], tuple[str, OptionReadout | None]],
    raw: dict[str, JsonValue],
    usage: Usage,
    latency: float,
) -> ChoiceResponse:
    """The ChoiceResponse of a reply that arrived: its answer, or a failed record with the
    reason `read` gave (a reply without a usable answer is a result, not a crash)."""
    try:
        choice, readout = read()
    except ReplyError as error:
        return ChoiceResponse(
            choice=None, readout=None, raw=raw, usage=usage, latency_s=latency, error=str(error)
        )
    return ChoiceResponse(choice=choice, readout=readout, raw=raw, usage=usage, latency_s=latency)


# ---------------------------------------------------------------- settings and validation


@dataclass(frozen=True)
class OpenAIChatSettings:
    """What the backend needs from a validated `[[models]]` entry (no key: only its name)."""

    model_id: str
    model: str
    base_url: str | None
    api_key_env: str
    choice_only: bool
    top_logprobs: int
    max_tokens: int
    timeout_s: float
    reasoning_effort: str | None


def settings_of(model: ModelSection) -> OpenAIChatSettings:
    """Check an `openai:` entry and derive its settings; raises ConfigError."""
    reject_unusable_keys(model, USABLE_KEYS)
    name = model.spec.partition(":")[2]
    where = f"model '{model.id}' ({model.spec})"
    if isinstance(model.base_url, list):
        raise ConfigError(
            f"{where}: base_url must be one URL for openai: (a list of replicas is for vllm:)"
        )
    if model.choice_only and model.top_logprobs is not None:
        raise ConfigError(f"{where}: top_logprobs has no use with choice_only = true")
    if not model.choice_only and REASONING_MODELS.match(name):
        raise ConfigError(
            f"{where}: reasoning models return no logprobs; set choice_only = true to run it "
            "for choices only (it then enters only the change-of-mind analyses)"
        )
    top = model.top_logprobs or MAX_TOP_LOGPROBS
    if top > MAX_TOP_LOGPROBS:
        raise ConfigError(f"{where}: top_logprobs is at most {MAX_TOP_LOGPROBS} for openai:")
    default_tokens = CHOICE_ONLY_TOKENS if model.choice_only else ANSWER_TOKENS
    return OpenAIChatSettings(
        model_id=model.id,
        model=name,
        base_url=model.base_url,
        api_key_env=model.api_key_env or DEFAULT_KEY_ENV,
        choice_only=model.choice_only,
        top_logprobs=top,
        max_tokens=model.max_tokens or default_tokens,
        timeout_s=model.timeout_s or DEFAULT_TIMEOUT_S,
        reasoning_effort=model.reasoning_effort,
    )


def api_key(env_name: str, model_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The key from the environment; ConfigError naming the variable when it is unset."""
    value = (os.environ if environ is None else environ).get(env_name, "")
    if not value.strip():
        raise ConfigError(f"model '{model_id}': set the environment variable {env_name} (API key)")
    return value.strip()


def validate(model: ModelSection) -> None:
    """Raise ConfigError unless this `openai:` entry can run (no network)."""
    settings = settings_of(model)
    api_key(settings.api_key_env, model.id)


def create(model: ModelSection) -> ModelBackend:
    return OpenAIChatBackend(settings_of(model))


# ---------------------------------------------------------------- the backend


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


class OpenAIChatBackend(ModelBackend):
    """Chat completions with first-token logprobs (or choices only, for reasoning models)."""

    max_batch_size = 1

    def __init__(
        self,
        settings: OpenAIChatSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` replaces the SDK's own (tests pass one with a MockTransport)."""
        self.settings = settings
        self.capabilities = CHOICE_ONLY_CAPABILITIES if settings.choice_only else CAPABILITIES
        # The key goes into the client and nowhere else: records hold the payload only.
        # max_retries=0: the runner retries (harness.retry), counting every attempt.
        self._client = AsyncOpenAI(
            api_key=api_key(settings.api_key_env, settings.model_id, environ),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=0,
            http_client=http_client,
        )
        self.attempt_timeout_s = settings.timeout_s
        self._model_version: str | None = None

    def payload(
        self, messages: list[dict[str, str]], *, temperature: float, seed: int
    ) -> dict[str, Any]:
        """The request body sent for one call (the exact JSON, without headers)."""
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "max_completion_tokens": self.settings.max_tokens,
            "seed": seed,
        }
        if self.settings.choice_only:
            # Reasoning models accept only their default temperature (1); omitting it there
            # is the same request, and any other value is still sent, for the API to refuse.
            if temperature != 1.0:
                body["temperature"] = temperature
            if self.settings.reasoning_effort is not None:
                body["reasoning_effort"] = self.settings.reasoning_effort
        else:
            body["temperature"] = temperature
            body["logprobs"] = True
            body["top_logprobs"] = self.settings.top_logprobs
        return body

    async def _post(self, body: dict[str, Any], retries: int = 0) -> httpx2.Response:
        """Send one chat completion (one attempt unless `retries`); the HTTP response.

        Through the SDK's generic `post` (auth, headers, timeouts, its error types), with
        the body as built: exactly the JSON the record stores, and without the typed-params
        transform of `chat.completions.create`, which cost more per call than all of
        mindshift's own work (bench/bench_throughput.py).
        """
        return await post_chat_completion(self._client, body, retries)

    async def preflight(self) -> None:
        """One small request like a trial's: stops the run if the model cannot do what the
        config asks (a reasoning model asked for logprobs, a wrong key or model name)."""
        messages = [{"role": "user", "content": "Reply with only the letter A."}]
        body = self.payload(messages, temperature=1.0, seed=0)
        body["max_completion_tokens"] = 16 if self.settings.choice_only else 1
        where = f"model '{self.settings.model_id}' (openai:{self.settings.model})"
        try:
            response = await self._post(body, retries=PREFLIGHT_RETRIES)
        except openai.APIStatusError as error:
            message = status_message(error)
            if not self.settings.choice_only and "logprob" in message.lower():
                raise ConfigError(
                    f"{where} rejects logprobs ({message}); set choice_only = true to run it "
                    "for choices only"
                ) from None
            raise UserError(f"{where}: preflight request failed: {message}") from None
        except openai.APIConnectionError as error:
            raise UserError(f"{where}: cannot reach the API: {error}") from None
        try:
            body_json = decode_body(response)
            choice = first_choice(body_json)
        except ReplyError as error:
            raise UserError(f"{where}: unreadable preflight response: {error}") from None
        if not self.settings.choice_only:
            try:
                if not token_logprobs(choice):
                    raise ReplyError("the response carries no logprobs")
            except ReplyError as error:
                raise ConfigError(
                    f"{where} returned no logprobs ({error}); set choice_only = true to run "
                    "it for choices only"
                ) from None
        if isinstance(body_json, dict) and isinstance(body_json.get("model"), str):
            self._model_version = body_json["model"]

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        if len(requests) == 1:  # the usual case: no task to spawn
            return [await self._answer_one(requests[0])]
        return list(await asyncio.gather(*(self._answer_one(request) for request in requests)))

    async def _answer_one(self, request: ChoiceRequest) -> ChoiceResponse:
        messages = chat_messages(request.prompt)
        body = self.payload(messages, temperature=request.temperature, seed=request.seed)
        raw: dict[str, JsonValue] = {"request": body}
        labels = request.prompt.labels
        if not self.settings.choice_only:
            try:
                check_single_character_labels(labels)
            except ReplyError as error:
                return ChoiceResponse(choice=None, readout=None, raw=raw, error=str(error))
        started = time.perf_counter()
        try:
            response = await self._post(body)
        except openai.APIError as error:
            if isinstance(error, openai.APIStatusError):
                if error.status_code in FATAL_STATUS:
                    raise UserError(
                        f"model '{self.settings.model_id}': {status_message(error)}"
                    ) from None
                raw["response"] = error.body if isinstance(error.body, dict) else str(error.body)
            return ChoiceResponse(
                choice=None,
                readout=None,
                raw=raw,
                latency_s=time.perf_counter() - started,
                error=error_text(error),
                transient=transient_of(error),
            )
        latency = time.perf_counter() - started
        try:
            body_json = decode_body(response)
        except ReplyError as error:
            # A body cut short or garbled on the way (a proxy, a dropped connection):
            # the same request may well come back whole.
            raw["response"] = body_excerpt(response)
            return ChoiceResponse(
                choice=None,
                readout=None,
                raw=raw,
                latency_s=latency,
                error=str(error),
                transient=Transient(),
            )
        return self.response_from_body(body_json, labels, raw, latency)

    def response_from_body(
        self,
        body_json: JsonValue,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
        latency: float,
    ) -> ChoiceResponse:
        """The answer a chat completion's JSON body gives (also for batch results)."""
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

    def batch_api(self) -> BatchApi:
        """The provider's batch API (`--batch`), through this backend's client."""
        from harness.models.openai_batch import OpenAIBatch

        return OpenAIBatch(self)

    def describe(self) -> dict[str, str]:
        facts = {
            "provider": PROVIDER,
            "model": self.settings.model,
            # The client's, not the config's: the SDK also reads OPENAI_BASE_URL.
            "base_url": str(self._client.base_url),
            "mode": "choice-only" if self.settings.choice_only else "first-token logprobs",
            "max_completion_tokens": str(self.settings.max_tokens),
            "answer_format": ANSWER_FORMAT,
            "openai_sdk": openai.__version__,
        }
        if not self.settings.choice_only:
            facts["top_logprobs"] = str(self.settings.top_logprobs)
        if self._model_version is not None:
            facts["model_version"] = self._model_version
        return facts

    async def aclose(self) -> None:
        await self._client.close()
