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

Reasoning models (o1, o3, o4-mini, the gpt-5 family, ...) return no logprobs (gpt-5.1 and later
only with `reasoning_effort = "none"`). They run with a readout that needs none (free-text
replies, below), or in choice-only mode (`choice_only = true`): the choice is parsed from the
reply (its first word, or the word after "answer is") and the readout is empty.

The preflight (`check_logprobs`, `harness.models.logprob_check`) asks a probe question whose
answer is A or B, read as a trial is, and stops the run before it spends anything when the
logprobs cannot give a confidence: the parameter refused, none returned, placeholder values,
no label among the answer position's top tokens. The one-line message names the fix
(`readout = "sampling"`, or `reasoning_effort = "none"` for the gpt-5 family).

Free-text replies (`reply`, for the sampling, verbal and P(True) readouts) send the readout's
messages as they are, in one request with `n`, at the request's temperature and seed, without
logprobs; a reasoning model gets the choice-only budget to think in, and its reasoning tokens
are recorded in `Usage.reasoning_tokens` (and priced as output, like all of its tokens).

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
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from mindshift.harness.batch_api import BatchApi
from mindshift.harness.errors import UserError
from mindshift.harness.models.base import ModelBackend, ModelRef
from mindshift.harness.models.chat_answer import ANSWER_FORMAT, ReplyError
from mindshift.harness.models.logprob_check import (
    FIX_OTHER_READOUT,
    FIX_REASONING_NONE,
    LogprobsUnusable,
    unusable_reason,
)
from mindshift.harness.models.openai_batch import OpenAIBatch
from mindshift.harness.models.openai_settings import (
    CAPABILITIES,
    CHOICE_ONLY_CAPABILITIES,
    NO_REASONING,
    OpenAISettings,
    api_key,
    takes_no_reasoning,
)
from mindshift.harness.models.openai_wire import (
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
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    ReplyRequest,
    ReplyResponse,
    Transient,
)

PREFLIGHT_RETRIES = 3
"""The preflight request alone is retried by the SDK: it is no trial, and a run should not
be refused for one 429 at its start."""


@dataclass(frozen=True)
class _Exchange:
    """What one attempt at one request gave: the response's JSON, or why there is none."""

    body: JsonValue
    latency_s: float
    error: str | None = None
    transient: Transient | None = None


def rejection_fix(message: str, model: str, settings: OpenAISettings) -> str | None:
    """The fix for a request with logprobs that the API refused with `message`; None when
    the refusal is not about logprobs (a wrong key, a bad value of something else)."""
    lowered = message.lower()
    effort_none = settings.reasoning_effort == NO_REASONING
    if "logprob" not in lowered:
        # "reasoning_effort does not support 'none' with this model": a model that cannot
        # turn its reasoning off, so no setting gives it logprobs.
        refused_none = effort_none and "reasoning" in lowered and "none" in lowered
        return FIX_OTHER_READOUT if refused_none else None
    if not effort_none and ("reasoning" in lowered or takes_no_reasoning(model)):
        return FIX_REASONING_NONE
    return FIX_OTHER_READOUT


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
        self._logprobs_usable = False
        """Set once `check_logprobs` passed: a second call sends nothing."""

    async def _post(self, body: dict[str, Any], retries: int = 0) -> httpx2.Response:
        """Send one chat completion (one attempt unless `retries`); the HTTP response.

        Through the SDK's generic `post` (auth, headers, timeouts, its error types), with
        the body as built: exactly the JSON the record stores, and without the typed-params
        transform of `chat.completions.create`, which cost more per call than all of
        mindshift's own work (bench/bench_throughput.py).
        """
        return await post_chat_completion(self._client, body, retries)

    async def preflight(self, *, logprobs: bool = True) -> None:
        """One small request like a trial's: stops the run if the model cannot do what the
        config asks (logprobs it cannot give, a wrong key or model name). In choice-only
        mode, or for a readout that reads no logprobs, it asks for none; otherwise it is
        `check_logprobs`."""
        if logprobs and not self.settings.choice_only:
            await self.check_logprobs()
            return
        messages = [{"role": "user", "content": "Reply with only the letter A."}]
        # No logprobs asked: a reasoning model under a readout by replies refuses them.
        body = self.format.payload(messages, temperature=1.0, seed=0, logprobs=False)
        body["max_completion_tokens"] = 16
        try:
            response = await self._post(body, retries=PREFLIGHT_RETRIES)
        except openai.APIError as error:
            raise self._preflight_failure(error) from None
        self._note_version(self._preflight_body(response))

    async def check_logprobs(self) -> None:
        """Ask the probe question with logprobs (whatever the entry's mode) and raise
        `LogprobsUnusable`, with the fix, unless they can give a confidence; `UserError` for
        what no readout fixes (a wrong key or model name, an unreachable API)."""
        if self._logprobs_usable:
            return
        try:
            response = await self._post(self.format.probe_body(), retries=PREFLIGHT_RETRIES)
        except openai.APIStatusError as error:
            message = status_message(error)
            fix = None
            if error.status_code not in FATAL_STATUS:
                fix = rejection_fix(message, self.model.name, self.settings)
            if fix is not None:
                raise LogprobsUnusable(self.model.id, f"it refuses them ({message})", fix) from None
            raise self._preflight_failure(error) from None
        except openai.APIError as error:
            raise self._preflight_failure(error) from None
        body_json = self._preflight_body(response)
        self._note_version(body_json)
        try:
            tokens = token_logprobs(first_choice(body_json))
        except ReplyError as error:
            raise LogprobsUnusable(self.model.id, str(error), self._fix()) from None
        reason = unusable_reason(tokens)
        if reason is not None:
            raise LogprobsUnusable(self.model.id, reason, self._fix())
        self._logprobs_usable = True

    def _fix(self) -> str:
        """The fix for logprobs that came back unusable (rather than refused)."""
        if takes_no_reasoning(self.model.name) and self.settings.reasoning_effort != NO_REASONING:
            return FIX_REASONING_NONE
        return FIX_OTHER_READOUT

    def _where(self) -> str:
        return f"model '{self.model.id}' ({self.model.spec})"

    def _preflight_failure(self, error: openai.APIError) -> UserError:
        if isinstance(error, openai.APIStatusError):
            return UserError(f"{self._where()}: preflight request failed: {status_message(error)}")
        return UserError(f"{self._where()}: cannot reach the API: {error}")

    def _preflight_body(self, response: httpx2.Response) -> JsonValue:
        try:
            body_json = decode_body(response)
            first_choice(body_json)
        except ReplyError as error:
            raise UserError(f"{self._where()}: unreadable preflight response: {error}") from None
        return body_json

    def _note_version(self, body_json: JsonValue) -> None:
        if isinstance(body_json, dict) and isinstance(body_json.get("model"), str):
            self._model_version = body_json["model"]

    async def _exchange(self, body: dict[str, Any], raw: dict[str, JsonValue]) -> _Exchange:
        """One attempt at one request: its JSON, or the failure's reason and whether another
        attempt may fix it (the error body noted in `raw`). A rejected key or an unknown
        model raises `UserError`: no call can succeed."""
        started = time.perf_counter()
        try:
            response = await self._post(body)
        except openai.APIError as error:
            if isinstance(error, openai.APIStatusError):
                if error.status_code in FATAL_STATUS:
                    raise UserError(f"model '{self.model.id}': {status_message(error)}") from None
                raw["response"] = error.body if isinstance(error.body, dict) else str(error.body)
            return _Exchange(
                None, time.perf_counter() - started, error_text(error), transient_of(error)
            )
        latency = time.perf_counter() - started
        try:
            return _Exchange(decode_body(response), latency)
        except ReplyError as error:
            # A body cut short or garbled on the way (a proxy, a dropped connection):
            # the same request may well come back whole.
            raw["response"] = body_excerpt(response)
            return _Exchange(None, latency, str(error), Transient())

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
        sent = await self._exchange(body, raw)
        if sent.error is not None:
            return ChoiceResponse(
                choice=None,
                readout=None,
                raw=raw,
                latency_s=sent.latency_s,
                error=sent.error,
                transient=sent.transient,
            )
        return self.format.response_from_body(sent.body, request.prompt.labels, raw, sent.latency_s)

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        """Each request's `n` replies from one request with `n` (see the module's notes)."""
        if len(requests) == 1:
            return [await self._reply_one(requests[0])]
        return list(await asyncio.gather(*(self._reply_one(request) for request in requests)))

    async def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        body = self.format.reply_body(request)
        raw: dict[str, JsonValue] = {"request": body}
        sent = await self._exchange(body, raw)
        if sent.error is not None:
            return ReplyResponse(
                texts=(),
                raw=raw,
                latency_s=sent.latency_s,
                error=sent.error,
                transient=sent.transient,
            )
        return self.format.replies_from_body(sent.body, request.n, raw, sent.latency_s)

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
