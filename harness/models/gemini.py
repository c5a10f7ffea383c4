"""`gemini:<model>`: Google's Gemini API through the `google-genai` SDK's async client.

`google-genai` is Google's current SDK for the Gemini API; the older `google-generativeai`
package reached its end of support and receives no fixes or new model features, so mindshift
does not use it. Calls go through `client.aio.models.generate_content` (never streaming:
Gemini returns logprobs only for non-streamed responses) with `response_logprobs=True` and
`logprobs=k` (k at most 20).

Answer format and readout are those of `openai:` (see `harness.models.openai_chat`): no
prefill, so one line appended to the last user message asks for the bare option label, and
confidence is read from the top candidates at the first generated token that is a label.
The answer is Gemini's own sampled token (temperature from the request; the request's seed,
reduced to the API's 32-bit range, passed as `seed`). System messages become the
`system_instruction`; assistant messages become `model` turns. The API's JSON leaves out
fields that hold their default value, so a token of probability 1 comes without a
`logProbability`: it is read as 0.0, never as missing.

Only some Gemini models return logprobs, and which ones changes. `preflight()` sends one
small request before the run spends anything; a model that rejects logprobs (or answers
without them) stops the run with a one-line message, unless the entry says
`choice_only = true`, in which case the choice is parsed from the reply and no readout is made.
Thinking models count their thoughts against `max_tokens`: set `thinking_budget = 0` where the
model allows it, so that the first output token is the answer.

Each call is one attempt (the SDK's retries are off): a failure that another attempt may fix
(408, 429, 5xx, a network error or timeout) is marked `Transient`, with its Retry-After, and
the runner's retry policy (`harness.retry`) retries it, counting every attempt. Only the
preflight request retries here, since it is no trial.

Usage: Gemini reports thought tokens apart from the candidates' tokens; both are billed as
output, so `output_tokens` is their sum and `reasoning_tokens` the thoughts (the meaning
`harness.types.Usage` gives them for every provider).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from pydantic import ValidationError

from harness.batch_api import BatchApi
from harness.config import ModelSection, reject_unusable_keys
from harness.errors import ConfigError, UserError
from harness.models.base import Capabilities, ModelBackend
from harness.models.openai_chat import (
    ANSWER_FORMAT,
    ReplyError,
    TokenLogprob,
    chat_messages,
    check_single_character_labels,
    read_reply,
    reply_response,
)
from harness.retry import RetryPolicy
from harness.retry import retry_after_s as retry_after_of_headers
from harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    OptionReadout,
    Prompt,
    Transient,
    Usage,
)

PROVIDER = "gemini"
MAX_TOP_LOGPROBS = 20
"""The most candidates per position the Gemini API returns."""
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
"""Where the key is looked for when `api_key_env` is unset (the SDK's own order)."""
DEFAULT_TIMEOUT_S = 120.0
PREFLIGHT_RETRIES = 3
ANSWER_TOKENS = 8
"""Default output budget with logprobs and thinking off: the label comes first."""
THINKING_TOKENS = 2048
"""Default output budget when the model may think (thoughts count against it)."""
SEED_RANGE = 2**31
"""Gemini's seed is a 32-bit signed integer."""
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})

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
        "api_key_env",
        "choice_only",
        "top_logprobs",
        "max_tokens",
        "timeout_s",
        "max_retries",
        "deadline_s",
        "retry_backoff_s",
        "thinking_budget",
    }
)


@dataclass(frozen=True)
class GeminiSettings:
    """What the backend needs from a validated `[[models]]` entry (the key's variable only)."""

    model_id: str
    model: str
    api_key_env: str | None
    choice_only: bool
    top_logprobs: int
    max_tokens: int
    timeout_s: float
    thinking_budget: int | None


def settings_of(model: ModelSection) -> GeminiSettings:
    """Check a `gemini:` entry and derive its settings; raises ConfigError."""
    reject_unusable_keys(model, USABLE_KEYS)
    where = f"model '{model.id}' ({model.spec})"
    if model.choice_only and model.top_logprobs is not None:
        raise ConfigError(f"{where}: top_logprobs has no use with choice_only = true")
    top = model.top_logprobs or MAX_TOP_LOGPROBS
    if top > MAX_TOP_LOGPROBS:
        raise ConfigError(f"{where}: top_logprobs is at most {MAX_TOP_LOGPROBS} for gemini:")
    thinking_off = model.thinking_budget == 0
    default_tokens = ANSWER_TOKENS if thinking_off and not model.choice_only else THINKING_TOKENS
    return GeminiSettings(
        model_id=model.id,
        model=model.spec.partition(":")[2],
        api_key_env=model.api_key_env,
        choice_only=model.choice_only,
        top_logprobs=top,
        max_tokens=model.max_tokens or default_tokens,
        timeout_s=model.timeout_s or DEFAULT_TIMEOUT_S,
        thinking_budget=model.thinking_budget,
    )


def api_key(settings: GeminiSettings, environ: Mapping[str, str] | None = None) -> str:
    """The key from the environment; ConfigError naming the variable(s) when unset."""
    env = os.environ if environ is None else environ
    names = (settings.api_key_env,) if settings.api_key_env else KEY_ENVS
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    raise ConfigError(
        f"model '{settings.model_id}': set the environment variable {' or '.join(names)} "
        "(Gemini API key)"
    )


def validate(model: ModelSection) -> None:
    """Raise ConfigError unless this `gemini:` entry can run (no network)."""
    api_key(settings_of(model))


def create(model: ModelSection) -> ModelBackend:
    return GeminiBackend(settings_of(model))


def contents_of(prompt: Prompt) -> tuple[str | None, list[dict[str, Any]]]:
    """System instruction and `contents` (Gemini's roles) of a prompt, answer format added."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in chat_messages(prompt):
        if message["role"] == "system":
            system.append(message["content"])
        else:
            role = "model" if message["role"] == "assistant" else "user"
            contents.append({"role": role, "parts": [{"text": message["content"]}]})
    return ("\n\n".join(system) if system else None), contents


def usage_of(response: genai_types.GenerateContentResponse) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    thoughts = meta.thoughts_token_count or 0
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        # Thoughts are billed as output but counted apart from the candidates' tokens.
        output_tokens=(meta.candidates_token_count or 0) + thoughts,
        reasoning_tokens=thoughts,
        cached_tokens=meta.cached_content_token_count or 0,
    )


def _reply_text(candidate: genai_types.Candidate) -> str:
    parts = candidate.content.parts if candidate.content is not None else None
    # Thought summaries are not the answer.
    return "".join(part.text for part in parts or [] if part.text and not part.thought)


def token_logprobs(candidate: genai_types.Candidate) -> list[TokenLogprob]:
    """The chosen token and top candidates at each output position; ReplyError if absent."""
    result = candidate.logprobs_result
    if result is None or result.top_candidates is None or result.chosen_candidates is None:
        raise ReplyError("the response carries no logprobs")
    if len(result.top_candidates) != len(result.chosen_candidates):
        raise ReplyError(
            f"logprobs are malformed: {len(result.chosen_candidates)} chosen tokens but "
            f"{len(result.top_candidates)} lists of top candidates"
        )
    tokens = []
    for position, (chosen, top) in enumerate(
        zip(result.chosen_candidates, result.top_candidates, strict=True)
    ):
        if chosen.token is None:
            raise ReplyError(f"logprobs entry {position} has no token")
        alternatives = []
        for alternative in top.candidates or []:
            if alternative.token is None:
                raise ReplyError(f"a top candidate at position {position} has no token")
            alternatives.append((alternative.token, _logprob(alternative)))
        tokens.append(TokenLogprob(chosen.token, _logprob(chosen), alternatives))
    return tokens


def _logprob(candidate: genai_types.LogprobsResultCandidate) -> float:
    # The API's JSON leaves out fields holding their default value, so a token with
    # probability 1 arrives without `logProbability`: absent is 0.0, never "unknown".
    value = candidate.log_probability
    return 0.0 if value is None else float(value)


def first_candidate(response: genai_types.GenerateContentResponse) -> genai_types.Candidate:
    if not response.candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback is not None else None
        suffix = f" (prompt blocked: {reason})" if reason is not None else ""
        raise ReplyError(f"the response has no candidates{suffix}")
    return response.candidates[0]


def error_message(error: genai_errors.APIError) -> str:
    return f"HTTP {error.code}: {error.message or error.status}"


def retry_after_s(error: genai_errors.APIError) -> float | None:
    """Seconds the server asked to wait (Retry-After); None if not said."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return retry_after_of_headers(headers) if headers is not None else None


PREFLIGHT_POLICY = RetryPolicy(max_retries=PREFLIGHT_RETRIES, deadline_s=None)


def backoff_s(retry: int) -> float:
    """The preflight's wait before retry number `retry` (the runner's policy's backoff)."""
    return PREFLIGHT_POLICY.backoff_s(retry, random.Random())


class _CallFailed(Exception):
    """A failed attempt; carries the reason, whether it is transient, and the raw error."""

    def __init__(
        self, message: str, transient: Transient | None = None, raw: JsonValue = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.raw = raw


class GeminiBackend(ModelBackend):
    """Gemini with first-token logprobs (or choices only for models that give none)."""

    max_batch_size = 1

    def __init__(
        self,
        settings: GeminiSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` replaces the SDK's own (tests pass one with a MockTransport)."""
        self.settings = settings
        self.capabilities = CHOICE_ONLY_CAPABILITIES if settings.choice_only else CAPABILITIES
        options = genai_types.HttpOptions(
            timeout=int(settings.timeout_s * 1000),
            # One attempt per call: the runner retries (harness.retry), counting attempts.
            retry_options=genai_types.HttpRetryOptions(attempts=1),
            httpx_async_client=http_client,
        )
        self._client = genai.Client(api_key=api_key(settings, environ), http_options=options)
        self.attempt_timeout_s = settings.timeout_s
        self._model_version: str | None = None

    def config(self, *, temperature: float, seed: int, system: str | None) -> dict[str, Any]:
        """The generation config of one call, as a JSON-able dict (what the record shows)."""
        config: dict[str, Any] = {
            "temperature": temperature,
            "seed": seed % SEED_RANGE,
            "candidate_count": 1,
            "max_output_tokens": self.settings.max_tokens,
        }
        if system is not None:
            config["system_instruction"] = system
        if not self.settings.choice_only:
            config["response_logprobs"] = True
            config["logprobs"] = self.settings.top_logprobs
        if self.settings.thinking_budget is not None:
            config["thinking_config"] = {"thinking_budget": self.settings.thinking_budget}
        return config

    async def _generate(
        self, contents: list[dict[str, Any]], config: dict[str, Any]
    ) -> genai_types.GenerateContentResponse:
        """One attempt at one call. Raises _CallFailed (UserError for a key or model error)."""
        try:
            return await self._client.aio.models.generate_content(
                model=self.settings.model,
                contents=contents,  # type: ignore[arg-type]  # dicts are valid ContentDicts
                config=genai_types.GenerateContentConfig.model_validate(config),
            )
        except genai_errors.APIError as error:
            if error.code in FATAL_STATUS:
                raise UserError(
                    f"model '{self.settings.model_id}': {error_message(error)}"
                ) from None
            transient = None
            if error.code in RETRYABLE_STATUS or error.code >= 500:
                transient = Transient(
                    rate_limited=error.code == 429, retry_after_s=retry_after_s(error)
                )
            raise _CallFailed(error_message(error), transient, error.details) from None
        except httpx2.TransportError as error:  # network errors and timeouts
            raise _CallFailed(f"{type(error).__name__}: {error}", Transient()) from None
        except ValueError as error:
            # Malformed JSON (a body cut short on the way: worth another attempt), or JSON
            # the SDK's models reject (pydantic's ValidationError is a ValueError: the
            # server answered, and would answer the same again).
            invalid = isinstance(error, ValidationError)
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            kind = "invalid" if invalid else "malformed"
            raise _CallFailed(
                f"{kind} response: {first_line}", None if invalid else Transient()
            ) from None

    async def _generate_with_retries(
        self, contents: list[dict[str, Any]], config: dict[str, Any]
    ) -> genai_types.GenerateContentResponse:
        """The preflight's call: transient failures retried with the runner's backoff."""
        retry = 0
        while True:
            try:
                return await self._generate(contents, config)
            except _CallFailed as failure:
                if failure.transient is None or retry >= PREFLIGHT_RETRIES:
                    raise
                retry += 1
                asked = failure.transient.retry_after_s
                await asyncio.sleep(backoff_s(retry) if asked is None else asked)

    async def preflight(self) -> None:
        """One small request like a trial's: stops the run if the model rejects logprobs
        (unless choice-only), or the key or model name is wrong."""
        prompt_config = self.config(temperature=1.0, seed=0, system=None)
        contents = [{"role": "user", "parts": [{"text": "Reply with only the letter A."}]}]
        where = f"model '{self.settings.model_id}' (gemini:{self.settings.model})"
        try:
            response = await self._generate_with_retries(contents, prompt_config)
        except _CallFailed as failure:
            message = str(failure)
            if not self.settings.choice_only and "logprob" in message.lower():
                raise ConfigError(
                    f"{where} rejects logprobs ({message}); set choice_only = true to run it "
                    "for choices only"
                ) from None
            raise UserError(f"{where}: preflight request failed: {message}") from None
        self._model_version = response.model_version
        try:
            candidate = first_candidate(response)
        except ReplyError as error:
            raise UserError(f"{where}: unreadable preflight response: {error}") from None
        if self.settings.choice_only:
            return
        if not _reply_text(candidate).strip():
            raise UserError(
                f"{where}: the preflight reply was empty (finish_reason "
                f"{candidate.finish_reason}); raise max_tokens, or set thinking_budget = 0 "
                "where the model allows it"
            )
        try:
            if not token_logprobs(candidate):
                raise ReplyError("the response carries no logprobs")
        except ReplyError as error:
            raise ConfigError(
                f"{where} returned no logprobs ({error}); set choice_only = true to run it "
                "for choices only"
            ) from None

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        return list(await asyncio.gather(*(self._answer_one(request) for request in requests)))

    async def _answer_one(self, request: ChoiceRequest) -> ChoiceResponse:
        system, contents = contents_of(request.prompt)
        config = self.config(temperature=request.temperature, seed=request.seed, system=system)
        raw: dict[str, JsonValue] = {
            "request": {"model": self.settings.model, "contents": contents, "config": config}
        }
        labels = request.prompt.labels
        if not self.settings.choice_only:
            try:
                check_single_character_labels(labels)
            except ReplyError as error:
                return ChoiceResponse(choice=None, readout=None, raw=raw, error=str(error))
        started = time.perf_counter()
        try:
            response = await self._generate(contents, config)
        except _CallFailed as failure:
            raw["response"] = failure.raw
            return ChoiceResponse(
                choice=None,
                readout=None,
                raw=raw,
                latency_s=time.perf_counter() - started,
                error=str(failure),
                transient=failure.transient,
            )
        return self.response_from(response, labels, raw, time.perf_counter() - started)

    def response_from(
        self,
        response: genai_types.GenerateContentResponse,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
        latency: float,
    ) -> ChoiceResponse:
        """The answer a GenerateContentResponse gives (also for batch results)."""
        raw["response"] = response.model_dump(
            mode="json", exclude_none=True, exclude={"sdk_http_response"}
        )
        return reply_response(
            lambda: self._read(response, labels, raw), raw, usage_of(response), latency
        )

    def _read(
        self,
        response: genai_types.GenerateContentResponse,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
    ) -> tuple[str, OptionReadout | None]:
        candidate = first_candidate(response)
        return read_reply(
            _reply_text(candidate),
            lambda: token_logprobs(candidate),
            labels,
            choice_only=self.settings.choice_only,
            finish_reason=candidate.finish_reason,
            raw=raw,
        )

    def batch_api(self) -> BatchApi:
        """The provider's batch API (`--batch`), through this backend's client."""
        from harness.models.gemini_batch import GeminiBatch

        return GeminiBatch(self)

    def describe(self) -> dict[str, str]:
        facts = {
            "provider": PROVIDER,
            "model": self.settings.model,
            "mode": "choice-only" if self.settings.choice_only else "first-token logprobs",
            "max_output_tokens": str(self.settings.max_tokens),
            "answer_format": ANSWER_FORMAT,
            "google_genai_sdk": genai.__version__,
        }
        if not self.settings.choice_only:
            facts["top_logprobs"] = str(self.settings.top_logprobs)
        if self.settings.thinking_budget is not None:
            facts["thinking_budget"] = str(self.settings.thinking_budget)
        if self._model_version is not None:
            facts["model_version"] = self._model_version
        return facts

    async def aclose(self) -> None:
        await self._client.aio.aclose()
