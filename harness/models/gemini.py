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

Only some Gemini models return logprobs, and which ones changes (2.5 and newer mostly answer
"Logprobs is not enabled"). `preflight()` runs `check_logprobs()` before the run spends
anything: a probe question whose answer is A or B, read as a trial is
(`harness.models.logprob_check`); a model that rejects logprobs, answers without them, or
gives values or top tokens no confidence can be read from stops the run with a one-line
message naming the fix, unless the entry says `choice_only = true` (the choice is then parsed
from the reply and no readout is made). Thinking models count their thoughts against
`max_tokens`: set `thinking_budget = 0` where the model allows it, so that the first output
token is the answer.

Free-text replies (`reply`, for the readouts without logprobs: every Gemini model can give
them) send the readout's messages as they are, without logprobs, and ask for the `n` replies
as candidates of one request (`candidateCount`, at most `max_candidates`, 8). More replies, or
a model that takes one candidate only, go out as several requests, the one for reply k on
seed + k, so the replies stay reproducible; their usage is summed. A model that refuses
several candidates is asked one at a time from then on.

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

from mindshift.harness.batch_api import BatchApi
from mindshift.harness.errors import UserError
from mindshift.harness.models.base import ModelBackend, ModelRef
from mindshift.harness.models.chat_answer import ANSWER_FORMAT, ReplyError, replies_of
from mindshift.harness.models.gemini_batch import GeminiBatch
from mindshift.harness.models.gemini_settings import (
    CAPABILITIES,
    CHOICE_ONLY_CAPABILITIES,
    GeminiSettings,
    api_key,
)
from mindshift.harness.models.gemini_wire import (
    FATAL_STATUS,
    RETRYABLE_STATUS,
    GeminiFormat,
    error_message,
    first_candidate,
    reply_text,
    reply_texts,
    retry_after_s,
    token_logprobs,
    usage_of,
    usage_sum,
)
from mindshift.harness.models.logprob_check import (
    FIX_OTHER_READOUT,
    LogprobsUnusable,
    unusable_reason,
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
PREFLIGHT_BACKOFF_S = 1.0
"""The preflight's first wait; it doubles with each retry (as the runner's policy does)."""


def create(model: ModelRef, settings: GeminiSettings) -> GeminiBackend:
    """The backend of a validated entry (the registry's factory; tests replace it)."""
    return GeminiBackend(model, settings)


def candidate_batches(n: int, per_request: int) -> list[tuple[int, int]]:
    """(first reply, replies) of each request that samples `n` replies, at most
    `per_request` each: reply k is sampled by the request on seed + its first reply."""
    return [(start, min(per_request, n - start)) for start in range(0, n, per_request)]


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
        self._logprobs_usable = False
        """Set once `check_logprobs` passed: a second call sends nothing."""
        self._candidates_per_request = settings.max_candidates
        """Lowered to 1 when the model refuses several candidates."""

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

    async def preflight(self, *, logprobs: bool = True) -> None:
        """One small request like a trial's: stops the run if the model cannot do what the
        config asks (logprobs it cannot give, a wrong key or model name). In choice-only
        mode, or for a readout that reads no logprobs, it asks for none; otherwise it is
        `check_logprobs`."""
        if logprobs and not self.settings.choice_only:
            await self.check_logprobs()
            return
        # No logprobs asked: most 2.5 models refuse them ("Logprobs is not enabled").
        prompt_config = self.format.config(temperature=1.0, seed=0, system=None, logprobs=False)
        contents = [{"role": "user", "parts": [{"text": "Reply with only the letter A."}]}]
        try:
            response = await self._generate_with_retries(contents, prompt_config)
        except _CallFailed as failure:
            raise UserError(f"{self._where()}: preflight request failed: {failure}") from None
        self._model_version = response.model_version
        self._preflight_candidate(response)

    async def check_logprobs(self) -> None:
        """Ask the probe question with logprobs (whatever the entry's mode) and raise
        `LogprobsUnusable`, with the fix, unless they can give a confidence; `UserError` for
        what no readout fixes (a wrong key or model name, an empty reply)."""
        if self._logprobs_usable:
            return
        contents, config = self.format.probe()
        try:
            response = await self._generate_with_retries(contents, config)
        except _CallFailed as failure:
            message = str(failure)
            if "logprob" in message.lower():
                raise LogprobsUnusable(
                    self.model.id, f"it refuses them ({message})", FIX_OTHER_READOUT
                ) from None
            raise UserError(f"{self._where()}: preflight request failed: {message}") from None
        self._model_version = response.model_version
        candidate = self._preflight_candidate(response)
        if not reply_text(candidate).strip():
            raise UserError(
                f"{self._where()}: the preflight reply was empty (finish_reason "
                f"{candidate.finish_reason}); raise max_tokens, or set thinking_budget = 0 "
                "where the model allows it"
            )
        try:
            tokens = token_logprobs(candidate)
        except ReplyError as error:
            raise LogprobsUnusable(self.model.id, str(error), FIX_OTHER_READOUT) from None
        reason = unusable_reason(tokens)
        if reason is not None:
            raise LogprobsUnusable(self.model.id, reason, FIX_OTHER_READOUT)
        self._logprobs_usable = True

    def _where(self) -> str:
        return f"model '{self.model.id}' ({self.model.spec})"

    def _preflight_candidate(
        self, response: genai_types.GenerateContentResponse
    ) -> genai_types.Candidate:
        try:
            return first_candidate(response)
        except ReplyError as error:
            raise UserError(f"{self._where()}: unreadable preflight response: {error}") from None

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

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        """Each request's `n` replies as candidates (see the module's notes)."""
        return list(await asyncio.gather(*(self._reply_one(request) for request in requests)))

    async def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        started = time.perf_counter()
        per_request = self._candidates_per_request
        raw, outcomes = await self._sample(request, per_request)
        refused = [o for o in outcomes if isinstance(o, _CallFailed) and _refuses_candidates(o)]
        if refused and per_request > 1:
            # The model takes one candidate per request: ask it that way from now on.
            self._candidates_per_request = per_request = 1
            raw, outcomes = await self._sample(request, per_request)
        latency = time.perf_counter() - started
        usage = usage_sum(
            [usage_of(o) for o in outcomes if isinstance(o, genai_types.GenerateContentResponse)]
        )
        failures = [o for o in outcomes if isinstance(o, _CallFailed)]
        if failures:
            # Another attempt helps only when every request that failed may pass next time.
            transient = failures[0].transient
            if any(failure.transient is None for failure in failures):
                transient = None
            return ReplyResponse(
                texts=(),
                raw=raw,
                usage=usage,
                latency_s=latency,
                error=str(failures[0]),
                transient=transient,
            )
        texts: list[str] = []
        reasons: list[object] = []
        batches = candidate_batches(request.n, per_request)
        for (_, count), outcome in zip(batches, outcomes, strict=True):
            assert isinstance(outcome, genai_types.GenerateContentResponse)
            own_texts, own_reasons = reply_texts(outcome, count)
            texts.extend(own_texts)
            reasons.extend(own_reasons)
        try:
            replies = replies_of(texts, request.n, reasons)
        except ReplyError as error:
            return ReplyResponse(
                texts=(), raw=raw, usage=usage, latency_s=latency, error=str(error)
            )
        return ReplyResponse(texts=replies, raw=raw, usage=usage, latency_s=latency)

    async def _sample(
        self, request: ReplyRequest, per_request: int
    ) -> tuple[dict[str, JsonValue], list[genai_types.GenerateContentResponse | _CallFailed]]:
        """Send the requests that sample a reply request's replies, `per_request` at most
        each, all at once; the record's raw exchange and each request's outcome."""
        calls = [
            self.format.reply_request(request, candidates=count, seed=request.seed + start)
            for start, count in candidate_batches(request.n, per_request)
        ]
        outcomes = list(
            await asyncio.gather(*(self._outcome(contents, config) for contents, config in calls))
        )
        sent = [{"model": self.model.name, "contents": c, "config": k} for c, k in calls]
        received = [
            self.format.dump(o) if isinstance(o, genai_types.GenerateContentResponse) else o.raw
            for o in outcomes
        ]
        if len(calls) == 1:
            return {"request": sent[0], "response": received[0]}, outcomes
        return {"requests": list(sent), "responses": received}, outcomes

    async def _outcome(
        self, contents: list[dict[str, Any]], config: dict[str, Any]
    ) -> genai_types.GenerateContentResponse | _CallFailed:
        try:
            return await self._generate(contents, config)
        except _CallFailed as failure:
            return failure

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


def _refuses_candidates(failure: _CallFailed) -> bool:
    """Whether a failed request was refused for asking several candidates."""
    return failure.transient is None and "candidate" in str(failure).lower()
