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
or the word after "answer is") and the readout is empty, so only measures of choices can
use them. A reasoning model without `choice_only`, or any model whose
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
The answer format is shared with `gemini:` (`harness.models.chat_answer`), the wire format
with the batch API and `vllm:` (`harness.models.openai_wire`); the entry's keys are checked
by `harness.models.openai_settings.OpenAISettings` before the backend is built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from harness.batch_api import BatchApi
from harness.errors import ConfigError, UserError
from harness.models.base import ModelBackend, ModelRef
from harness.models.chat_answer import ANSWER_FORMAT, ReplyError
from harness.models.openai_batch import OpenAIBatch
from harness.models.openai_settings import (
    CAPABILITIES,
    CHOICE_ONLY_CAPABILITIES,
    OpenAISettings,
    api_key,
)
from harness.models.openai_wire import (
    FATAL_STATUS,
    ChatCompletionsFormat,
    body_excerpt,
    decode_body,
    error_text,
    first_choice,
    post_chat_completion,
    status_message,
    token_logprobs,
    transient_of,
)
from harness.types import ChoiceRequest, ChoiceResponse, JsonValue, Transient

PREFLIGHT_RETRIES = 3
"""The preflight request alone is retried by the SDK: it is no trial, and a run should not
be refused for one 429 at its start."""


def create(model: ModelRef, settings: OpenAISettings) -> OpenAIChatBackend:
    """The backend of a validated entry (the registry's factory; tests replace it)."""
    return OpenAIChatBackend(model, settings)


class OpenAIChatBackend(ModelBackend):
    """Chat completions with first-token logprobs (or choices only, for reasoning models)."""

    max_batch_size = 1

    def __init__(
        self,
        model: ModelRef,
        settings: OpenAISettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` replaces the SDK's own (tests pass one with a MockTransport)."""
        self.model = model
        self.settings = settings
        self.format = ChatCompletionsFormat(model.name, settings)
        self.capabilities = CHOICE_ONLY_CAPABILITIES if settings.choice_only else CAPABILITIES
        # The key goes into the client and nowhere else: records hold the payload only.
        # max_retries=0: the runner retries (harness.retry), counting every attempt.
        self._client = AsyncOpenAI(
            api_key=api_key(settings.api_key_env, model.id, environ),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=0,
            http_client=http_client,
        )
        self.attempt_timeout_s = settings.timeout_s
        self._model_version: str | None = None

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
        body = self.format.payload(messages, temperature=1.0, seed=0)
        body["max_completion_tokens"] = 16 if self.settings.choice_only else 1
        where = f"model '{self.model.id}' ({self.model.spec})"
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
        body = self.format.request_body(request)
        raw: dict[str, JsonValue] = {"request": body}
        problem = self.format.unanswerable(request)
        if problem is not None:
            return ChoiceResponse(choice=None, readout=None, raw=raw, error=problem)
        started = time.perf_counter()
        try:
            response = await self._post(body)
        except openai.APIError as error:
            if isinstance(error, openai.APIStatusError):
                if error.status_code in FATAL_STATUS:
                    raise UserError(f"model '{self.model.id}': {status_message(error)}") from None
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
        return self.format.response_from_body(body_json, request.prompt.labels, raw, latency)

    def batch_api(self) -> BatchApi:
        """The provider's batch API (`--batch`), through this backend's client."""
        return OpenAIBatch(self._client, self.format, self.model.id)

    def describe(self) -> dict[str, str]:
        facts = {
            "provider": self.model.provider,
            "model": self.model.name,
            # The client's, not the config's: the SDK also reads OPENAI_BASE_URL.
            "base_url": str(self._client.base_url),
            "mode": "choice-only" if self.settings.choice_only else "first-token logprobs",
            "max_completion_tokens": str(self.settings.completion_tokens),
            "answer_format": ANSWER_FORMAT,
            "openai_sdk": openai.__version__,
        }
        if not self.settings.choice_only:
            facts["top_logprobs"] = str(self.settings.top_k)
        if self._model_version is not None:
            facts["model_version"] = self._model_version
        return facts

    async def aclose(self) -> None:
        await self._client.close()
