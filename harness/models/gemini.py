"""`gemini:<model>`: Google's Gemini API through the `google-genai` SDK's async client.

`google-genai` is Google's current SDK for the Gemini API; the older `google-generativeai`
package reached its end of support and receives no fixes or new model features, so mindshift
does not use it. Calls go through `client.aio.models.generate_content` (never streaming:
Gemini returns logprobs only for non-streamed responses) with `response_logprobs=True` and
`logprobs=k` (k at most 20).

Answer format and readout are those of `openai:` (`harness.models.chat_answer`): no
prefill, so one line appended to the last user message asks for the bare option label, and
confidence is read from the top candidates at the first generated token that is a label.
The answer is Gemini's own sampled token (temperature from the request; the request's seed,
reduced to the API's 32-bit range, passed as `seed`). System messages become the
`system_instruction`; assistant messages become `model` turns. Requests and replies are
built and read by `harness.models.gemini_wire`; the entry's keys are checked by
`harness.models.gemini_settings.GeminiSettings` before the backend is built.

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
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from pydantic import ValidationError

from harness.batch_api import BatchApi
from harness.errors import ConfigError, UserError
from harness.models.base import ModelBackend, ModelRef
from harness.models.chat_answer import ANSWER_FORMAT, ReplyError
from harness.models.gemini_batch import GeminiBatch
from harness.models.gemini_settings import (
    CAPABILITIES,
    CHOICE_ONLY_CAPABILITIES,
    GeminiSettings,
    api_key,
)
from harness.models.gemini_wire import (
    FATAL_STATUS,
    RETRYABLE_STATUS,
    GeminiFormat,
    error_message,
    first_candidate,
    reply_text,
    retry_after_s,
    token_logprobs,
)
from harness.types import ChoiceRequest, ChoiceResponse, JsonValue, Transient

PREFLIGHT_RETRIES = 3
PREFLIGHT_BACKOFF_S = 1.0
"""The preflight's first wait; it doubles with each retry (as the runner's policy does)."""


def create(model: ModelRef, settings: GeminiSettings) -> GeminiBackend:
    """The backend of a validated entry (the registry's factory; tests replace it)."""
    return GeminiBackend(model, settings)


def backoff_s(retry: int) -> float:
    """The preflight's wait before retry number `retry` (1, 2, ...), jittered over the upper
    half of each step."""
    return PREFLIGHT_BACKOFF_S * 2.0 ** (retry - 1) * random.uniform(0.5, 1.0)


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
        model: ModelRef,
        settings: GeminiSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` replaces the SDK's own (tests pass one with a MockTransport)."""
        self.model = model
        self.settings = settings
        self.format = GeminiFormat(model.name, settings)
        self.capabilities = CHOICE_ONLY_CAPABILITIES if settings.choice_only else CAPABILITIES
        options = genai_types.HttpOptions(
            timeout=int(settings.timeout_s * 1000),
            # One attempt per call: the runner retries (harness.retry), counting attempts.
            retry_options=genai_types.HttpRetryOptions(attempts=1),
            httpx_async_client=http_client,
        )
        self._client = genai.Client(
            api_key=api_key(settings, model.id, environ), http_options=options
        )
        self.attempt_timeout_s = settings.timeout_s
        self._model_version: str | None = None

    async def _generate(
        self, contents: list[dict[str, Any]], config: dict[str, Any]
    ) -> genai_types.GenerateContentResponse:
        """One attempt at one call. Raises _CallFailed (UserError for a key or model error)."""
        try:
            return await self._client.aio.models.generate_content(
                model=self.model.name,
                contents=contents,  # type: ignore[arg-type]  # dicts are valid ContentDicts
                config=genai_types.GenerateContentConfig.model_validate(config),
            )
        except genai_errors.APIError as error:
            if error.code in FATAL_STATUS:
                raise UserError(f"model '{self.model.id}': {error_message(error)}") from None
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
        """The preflight's call: transient failures retried with backoff (`backoff_s`)."""
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
        prompt_config = self.format.config(temperature=1.0, seed=0, system=None)
        contents = [{"role": "user", "parts": [{"text": "Reply with only the letter A."}]}]
        where = f"model '{self.model.id}' ({self.model.spec})"
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
        if not reply_text(candidate).strip():
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
        contents, config = self.format.request(request)
        raw: dict[str, JsonValue] = {
            "request": {"model": self.model.name, "contents": contents, "config": config}
        }
        problem = self.format.unanswerable(request)
        if problem is not None:
            return ChoiceResponse(choice=None, readout=None, raw=raw, error=problem)
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
        return self.format.response_from(
            response, request.prompt.labels, raw, time.perf_counter() - started
        )

    def batch_api(self) -> BatchApi:
        """The provider's batch API (`--batch`), through this backend's client."""
        return GeminiBatch(self._client.aio.batches, self.format, self.model.id)

    def describe(self) -> dict[str, str]:
        facts = {
            "provider": self.model.provider,
            "model": self.model.name,
            "mode": "choice-only" if self.settings.choice_only else "first-token logprobs",
            "max_output_tokens": str(self.settings.output_tokens),
            "answer_format": ANSWER_FORMAT,
            "google_genai_sdk": genai.__version__,
        }
        if not self.settings.choice_only:
            facts["top_logprobs"] = str(self.settings.top_k)
        if self.settings.thinking_budget is not None:
            facts["thinking_budget"] = str(self.settings.thinking_budget)
        if self._model_version is not None:
            facts["model_version"] = self._model_version
        return facts

    async def aclose(self) -> None:
        await self._client.aio.aclose()
