"""`vllm:<served name>`: a model served by vLLM's OpenAI-compatible server.

The readout matches the local backend's. The prompt's answer prefix is sent as a final
assistant message with vLLM's `continue_final_message=True` and `add_generation_prompt=False`,
so the server renders the chat template with the assistant turn open and the prefix written
into it: the same text `harness.models.transformers_lm.render_prompt` builds. The option
labels are then read from the next token's `top_logprobs` (token variants merged, censoring
and outside mass as everywhere, `harness.readout`), and the answer is sampled from the
option probabilities with the request's seed, exactly as the local backend does; the token
the server sampled is kept in the record (and used only when the readout is censored).

Options longer than one character are scored with `prompt_logprobs`: for each option the
prefix plus " <option>" is sent as the assistant message, and the log-probabilities of the
option's own prompt tokens (those past the prefix-only prompt's tokens) are summed.

vLLM returns raw log-probabilities (before temperature, top-k/top-p and other processors)
unless the server runs with `--logprobs-mode processed_logprobs`; the mode mindshift launched
with, and the server's version (GET /version), are recorded in the manifest. The server
caps `top_logprobs` at its `--max-logprobs` (20 by default).

The preflight (`check_logprobs`, `harness.models.logprob_check`) asks each replica a probe
question whose answer is A or B, prefilled as a trial is, and stops the run before it spends
anything when the next token's logprobs cannot give a confidence: placeholder values (vLLM
writes minus infinity as -9999), or no label among the top tokens (a model that thinks first).

Free-text replies (`reply`, for the readouts without logprobs) send the readout's messages as
they are, in one request with `n` (vLLM samples the `n` replies from the request's seed),
without logprobs: with the generation prompt, or, when the request has an answer prefix,
with the prefix as an open assistant turn, as a trial's prompt is sent (the texts returned
are the continuations alone).

`base_url` may list several replicas: each call goes to the one with the fewest calls in
flight. With `serve`, mindshift starts the server(s) itself (`harness.models.vllm_server`)
in `preflight()`, waits for /health and stops them in `aclose()`. The client needs only the
`openai` SDK; vLLM itself is the optional extra `gpu`. The entry's keys are checked by
`harness.models.vllm_settings.VllmSettings` before the backend is built.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models.base import ModelBackend, ModelRef
from mindshift.harness.models.chat_answer import REPLY_TOKENS, ReplyError, TokenLogprob, replies_of
from mindshift.harness.models.logprob_check import (
    FIX_OTHER_READOUT,
    PROBE_QUESTION,
    LogprobsUnusable,
    unusable_reason,
)
from mindshift.harness.models.openai_wire import (
    FATAL_STATUS,
    all_choices,
    body_excerpt,
    decode_body,
    error_text,
    first_choice,
    post_chat_completion,
    reply_text,
    status_message,
    token_logprobs,
    transient_of,
    usage_of,
)
from mindshift.harness.models.vllm_server import (
    VllmServer,
    plan_servers,
    start_servers,
    stop_servers,
)
from mindshift.harness.models.vllm_settings import CAPABILITIES, VllmSettings
from mindshift.harness.readout import (
    ReadoutError,
    label_of_token,
    readout_from_masses,
    readout_from_top_logprobs,
    sample_choice,
)
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    OptionReadout,
    Prompt,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

NO_KEY = "EMPTY"
PROBE_PREFIX = "Answer:"
"""The answer prefix of the preflight's probe (prefilled, as a trial's)."""
PREFLIGHT_RETRIES = 3
"""The preflight request alone is retried by the SDK; trial calls are one attempt each, and
the runner retries them (`harness.retry`)."""
SERVER_DEFAULT_LOGPROBS_MODE = "raw_logprobs"


def create(model: ModelRef, settings: VllmSettings) -> VllmBackend:
    """The backend of a validated entry (the registry's factory; tests replace it)."""
    return VllmBackend(model, settings)


def root_of(base_url: str) -> str:
    """The server root of an API base URL ('http://h:8000/v1' -> 'http://h:8000')."""
    return base_url.removesuffix("/v1")


def prefilled_messages(prompt: Prompt, continuation: str) -> list[dict[str, str]]:
    """The prompt's messages and an open assistant turn holding `continuation`."""
    messages = [message.to_json() for message in prompt.messages]
    if continuation:
        messages.append({"role": "assistant", "content": continuation})
    return messages


def option_continuation(answer_prefix: str, label: str) -> str:
    """The assistant text whose last tokens are the option: prefix, a space, the option."""
    return f"{answer_prefix} {label}" if answer_prefix else label


def prompt_token_logprobs(body: JsonValue) -> list[tuple[int, float]]:
    """(token id, logprob) of each prompt token past the first, from `prompt_logprobs`.

    Asked with prompt_logprobs=0, each position holds exactly the prompt's own token.
    """
    entries = body.get("prompt_logprobs") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ReplyError("the response carries no prompt_logprobs")
    tokens = []
    for position, entry in enumerate(entries):
        if entry is None and position == 0:
            continue  # the first token has no context to be predicted from
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ReplyError(f"prompt_logprobs entry {position} is malformed")
        ((token_id, info),) = entry.items()
        logprob = info.get("logprob") if isinstance(info, dict) else None
        if isinstance(logprob, bool) or not isinstance(logprob, int | float):
            raise ReplyError(f"prompt_logprobs entry {position} has no logprob")
        try:
            tokens.append((int(token_id), float(logprob)))
        except ValueError:
            raise ReplyError(f"prompt_logprobs entry {position} has a bad token id") from None
    return tokens


def option_logprob(base: Sequence[tuple[int, float]], scored: Sequence[tuple[int, float]]) -> float:
    """Log-probability of the tokens `scored` has past the prompt `base` (their common prefix)."""
    shared = 0
    for (base_id, _), (scored_id, _) in zip(base, scored, strict=False):
        if base_id != scored_id:
            break
        shared += 1
    extra = scored[shared:]
    if not extra:
        raise ReplyError("the option adds no tokens to the prompt")
    total = math.fsum(logprob for _, logprob in extra)
    if math.isnan(total) or total > 1e-6:
        raise ReplyError(f"invalid option log-probability {total!r}")
    return total


def with_sound_bounds(readout: OptionReadout, tokens: TokenLogprob) -> OptionReadout:
    """Fix the upper bound of censored labels for vLLM's top_logprobs lists.

    vLLM puts the sampled token first in `top_logprobs` even when it is outside the top-k,
    in which case the list is the sampled token plus the top k-1. Every other entry is a
    true top-k token, so the smallest of those bounds an absent label; the sampled token's
    own (possibly far smaller) probability does not.
    """
    if not readout.censored:
        return readout
    others = [lp for token, lp in tokens.top if token != tokens.token]
    bound = math.exp(min(min(others), 0.0)) if others else 1.0
    return replace(readout, upper_bound={label: bound for label in readout.upper_bound})


class VllmBackend(ModelBackend):
    """vLLM's OpenAI-compatible server, read like the local backend (prefill + next token)."""

    capabilities = CAPABILITIES
    max_batch_size = 1

    def __init__(
        self,
        model: ModelRef,
        settings: VllmSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`http_client` carries every request (tests pass one with a MockTransport)."""
        self.model = model
        self.settings = settings
        env = os.environ if environ is None else environ
        # A server without --api-key accepts any key; the SDK insists on one.
        self._api_key = env.get(settings.api_key_env, "").strip() or NO_KEY
        self._http = http_client or httpx2.AsyncClient(timeout=settings.timeout_s)
        self._owns_http = http_client is None
        self._servers: list[VllmServer] = []
        if settings.serve is not None:
            plans = plan_servers(model.name, settings.serve)
            self._servers = [VllmServer(plan) for plan in plans]
            self.base_urls: tuple[str, ...] = tuple(plan.base_url for plan in plans)
        else:
            self.base_urls = settings.base_urls
        self._clients = [
            AsyncOpenAI(
                api_key=self._api_key,
                base_url=url,
                timeout=settings.timeout_s,
                max_retries=0,  # the runner retries, counting attempts (harness.retry)
                http_client=self._http,
            )
            for url in self.base_urls
        ]
        self.attempt_timeout_s = settings.timeout_s
        self._in_flight = [0] * len(self._clients)
        self._next = 0
        self._versions: dict[str, str] = {}
        self._logprobs_usable = False
        """Set once `check_logprobs` passed: a second call sends nothing."""

    # ------------------------------------------------------------ replicas and requests

    def _pick(self) -> int:
        """The replica with the fewest calls in flight (round robin among equals)."""
        count = len(self._clients)
        order = [(self._next + offset) % count for offset in range(count)]
        chosen = min(order, key=lambda index: self._in_flight[index])
        self._next = (chosen + 1) % count
        return chosen

    def payload(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        seed: int,
        prefilled: bool,
        prompt_logprobs: bool = False,
    ) -> dict[str, Any]:
        """The request body of one chat completion (the exact JSON sent, without headers)."""
        body: dict[str, Any] = {
            "model": self.model.name,
            "messages": messages,
            "max_tokens": 1,
            "temperature": temperature,
            "seed": seed,
            "logprobs": True,
            "top_logprobs": self.settings.top_k,
            # vLLM's own fields: render the template with the assistant turn left open.
            "continue_final_message": prefilled,
            "add_generation_prompt": not prefilled,
        }
        if prompt_logprobs:
            body["prompt_logprobs"] = 0
        return body

    async def _send(self, replica: int, body: dict[str, Any], retries: int = 0) -> JsonValue:
        """Send one chat completion to one replica (one attempt unless `retries`).

        Raises _Unreadable for a body that is no JSON (its start in the message), and lets
        the SDK's errors through.
        """
        # The whole body as it is, vLLM's own fields included (`post_chat_completion`).
        response = await post_chat_completion(self._clients[replica], body, retries)
        try:
            return decode_body(response)
        except ReplyError as error:
            raise _Unreadable(f"{error}: {body_excerpt(response, 300)!r}") from None

    async def _post(self, body: dict[str, Any]) -> tuple[JsonValue, int]:
        """Send one chat completion to the least busy replica: (JSON, replica)."""
        replica = self._pick()
        self._in_flight[replica] += 1
        try:
            response = await self._send(replica, body)
        finally:
            self._in_flight[replica] -= 1
        return response, replica

    def _server_died(self) -> str | None:
        dead = [server for server in self._servers if server.exited()]
        if not dead:
            return None
        return ", ".join(f"port {server.plan.port} (log {server.plan.log_path})" for server in dead)

    # ------------------------------------------------------------ preflight

    async def preflight(self, *, logprobs: bool = True) -> None:
        """Start the servers (with `serve`), check each replica (its version, that it
        serves this model), then `check_logprobs` (unless the readout reads none)."""
        if self._servers:
            assert self.settings.serve is not None
            await start_servers(self._servers, self._http, self.settings.serve.startup_timeout_s)
        await asyncio.gather(*(self._check_replica(url) for url in self.base_urls))
        if logprobs:
            await self.check_logprobs()

    async def check_logprobs(self) -> None:
        """Ask each replica the probe question, prefilled, and raise `LogprobsUnusable`,
        with the fix, unless the next token's logprobs can give a confidence; `ConfigError`
        when a replica refuses the prefilled request (its top_logprobs, its template), and
        `UserError` when it cannot be reached. The servers must be running (`preflight`)."""
        if self._logprobs_usable:
            return
        await asyncio.gather(*(self._probe(url) for url in self.base_urls))
        self._logprobs_usable = True

    async def _check_replica(self, base_url: str) -> None:
        where = f"model '{self.model.id}': vLLM at {base_url}"
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            version = await self._http.get(f"{root_of(base_url)}/version", timeout=30.0)
            models = await self._http.get(f"{base_url}/models", headers=headers, timeout=30.0)
        except httpx2.TransportError as error:
            raise UserError(f"{where} cannot be reached: {error}") from None
        if version.status_code == 200:
            try:
                self._versions[base_url] = str(version.json().get("version"))
            except (ValueError, AttributeError):
                self._versions[base_url] = "unreadable"
        if models.status_code in (401, 403):
            raise UserError(
                f"{where} refused the key (HTTP {models.status_code}): set "
                f"{self.settings.api_key_env} to the server's --api-key"
            )
        try:
            served = [entry["id"] for entry in models.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{where} is no OpenAI-compatible server (GET /models)") from None
        if self.model.name not in served:
            raise ConfigError(
                f"{where} does not serve {self.model.name!r} (it serves: "
                f"{', '.join(map(str, served))}); use one of those names in the spec"
            )

    async def _probe(self, base_url: str) -> None:
        where = f"model '{self.model.id}': vLLM at {base_url}"
        messages = [
            {"role": "user", "content": f"{PROBE_QUESTION} Reply with only the letter."},
            {"role": "assistant", "content": PROBE_PREFIX},
        ]
        body = self.payload(messages, temperature=1.0, seed=0, prefilled=True)
        try:
            response = await self._send(
                self.base_urls.index(base_url), body, retries=PREFLIGHT_RETRIES
            )
            choice = first_choice(response)
        except openai.APIStatusError as error:
            raise ConfigError(
                f"{where} rejected a prefilled request: {status_message(error)}"
            ) from None
        except openai.APIConnectionError as error:
            raise UserError(f"{where} cannot be reached: {error}") from None
        except ReplyError as error:
            raise UserError(f"{where}: unreadable preflight response: {error}") from None
        try:
            tokens = token_logprobs(choice)
        except ReplyError as error:
            raise LogprobsUnusable(self.model.id, str(error), FIX_OTHER_READOUT) from None
        reason = unusable_reason(tokens)
        if reason is not None:
            raise LogprobsUnusable(self.model.id, reason, FIX_OTHER_READOUT)

    # ------------------------------------------------------------ answering

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        return list(await asyncio.gather(*(self._answer_one(request) for request in requests)))

    async def _answer_one(self, request: ChoiceRequest) -> ChoiceResponse:
        started = time.perf_counter()
        raw: dict[str, JsonValue] = {}
        try:
            if all(len(label) == 1 for label in request.prompt.labels):
                choice, readout, usage = await self._next_token(request, raw)
            else:
                choice, readout, usage = await self._scored_options(request, raw)
        except openai.APIError as error:
            self._stop_if_fatal(error)
            return self._failed(raw, started, error_text(error), transient=transient_of(error))
        except _Unreadable as error:
            return self._failed(raw, started, str(error), transient=Transient())
        except ReplyError as error:
            return self._failed(raw, started, str(error))
        return ChoiceResponse(
            choice=choice,
            readout=readout,
            raw=raw,
            usage=usage,
            latency_s=time.perf_counter() - started,
        )

    def _stop_if_fatal(self, error: openai.APIError) -> None:
        """Raise `UserError` for what stops the run: a rejected key, an unknown model, a
        server mindshift started that has exited."""
        if isinstance(error, openai.APIStatusError) and error.status_code in FATAL_STATUS:
            raise UserError(f"model '{self.model.id}': {status_message(error)}") from None
        if isinstance(error, openai.APIConnectionError):
            dead = self._server_died()
            if dead is not None:
                raise UserError(f"model '{self.model.id}': the vLLM server exited: {dead}")

    def _failed(
        self,
        raw: dict[str, JsonValue],
        started: float,
        error: str,
        usage: Usage | None = None,
        *,
        transient: Transient | None = None,
    ) -> ChoiceResponse:
        return ChoiceResponse(
            choice=None,
            readout=None,
            raw=raw,
            usage=usage or Usage(),
            latency_s=time.perf_counter() - started,
            error=error,
            transient=transient,
        )

    async def _next_token(
        self, request: ChoiceRequest, raw: dict[str, JsonValue]
    ) -> tuple[str, OptionReadout, Usage]:
        """Single-token labels: the next-token readout after the prefilled prefix."""
        prompt = request.prompt
        body = self.payload(
            prefilled_messages(prompt, prompt.answer_prefix),
            temperature=request.temperature,
            seed=request.seed,
            prefilled=bool(prompt.answer_prefix),
        )
        raw["request"] = body
        response, replica = await self._post(body)
        raw["response"] = response
        raw["replica"] = self.base_urls[replica]
        usage = usage_of(response)
        tokens = token_logprobs(first_choice(response))
        if not tokens:
            raise ReplyError("the response has no generated token")
        first = tokens[0]
        try:
            readout = readout_from_top_logprobs(first.top, prompt.labels)
        except ReadoutError as error:
            raise ReplyError(str(error)) from None
        readout = with_sound_bounds(readout, first)
        return self._choose(request, readout, first.token), readout, usage

    def _choose(self, request: ChoiceRequest, readout: OptionReadout, sampled: str | None) -> str:
        """The answer: sampled from the option probabilities like the local backend; when
        they are censored, the server's own sampled token if it is a label."""
        if readout.probs is not None:
            return sample_choice(readout.probs, request.temperature, request.seed)
        label = None if sampled is None else label_of_token(sampled, request.prompt.labels)
        if label is None:
            raise ReplyError(
                f"censored readout and the sampled token {sampled!r} is no option label"
            )
        return label

    async def _scored_options(
        self, request: ChoiceRequest, raw: dict[str, JsonValue]
    ) -> tuple[str, OptionReadout, Usage]:
        """Multi-character labels: each option's tokens scored with prompt_logprobs."""
        prompt = request.prompt
        continuations = [prompt.answer_prefix] + [
            option_continuation(prompt.answer_prefix, label) for label in prompt.labels
        ]
        bodies = [
            self.payload(
                prefilled_messages(prompt, text),
                temperature=request.temperature,
                seed=request.seed,
                prefilled=bool(text),
                prompt_logprobs=True,
            )
            for text in continuations
        ]
        raw["requests"] = bodies
        results = await asyncio.gather(*(self._post(body) for body in bodies))
        responses = [response for response, _ in results]
        raw["responses"] = responses
        raw["replicas"] = [self.base_urls[replica] for _, replica in results]
        usages = [usage_of(response) for response in responses]
        usage = Usage(
            input_tokens=sum(u.input_tokens for u in usages),
            output_tokens=sum(u.output_tokens for u in usages),
            reasoning_tokens=sum(u.reasoning_tokens for u in usages),
            cached_tokens=sum(u.cached_tokens for u in usages),
        )
        base = prompt_token_logprobs(responses[0])
        mass: dict[str, float | None] = {
            label: math.exp(option_logprob(base, prompt_token_logprobs(response)))
            for label, response in zip(prompt.labels, responses[1:], strict=True)
        }
        base_tokens = token_logprobs(first_choice(responses[0]))
        top = base_tokens[0].top if base_tokens else []
        readout = readout_from_masses(mass, top)
        if readout.probs is None:
            raise ReplyError("every option has probability 0")
        choice = sample_choice(readout.probs, request.temperature, request.seed)
        return choice, readout, usage

    # ------------------------------------------------------------ free-text replies

    def reply_body(self, request: ReplyRequest) -> dict[str, Any]:
        """The body of a free-text reply request: its messages as the readout wrote them,
        the assistant turn opened by the chat template (holding the answer prefix, if any),
        `n` replies, no logprobs."""
        asked = request.max_tokens or REPLY_TOKENS
        budget = asked if self.settings.max_tokens is None else max(asked, self.settings.max_tokens)
        messages = [message.to_json() for message in request.messages]
        body: dict[str, Any] = {
            "model": self.model.name,
            "messages": messages,
            "max_tokens": budget,
            "temperature": request.temperature,
            "seed": request.seed,
            "n": request.n,
        }
        if request.answer_prefix:
            messages.append({"role": "assistant", "content": request.answer_prefix})
            # vLLM's own fields, as in `payload`: the assistant turn stays open.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        return list(await asyncio.gather(*(self._reply_one(request) for request in requests)))

    async def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        started = time.perf_counter()
        body = self.reply_body(request)
        raw: dict[str, JsonValue] = {"request": body}
        try:
            response, replica = await self._post(body)
        except openai.APIError as error:
            self._stop_if_fatal(error)
            return ReplyResponse(
                texts=(),
                raw=raw,
                latency_s=time.perf_counter() - started,
                error=error_text(error),
                transient=transient_of(error),
            )
        except _Unreadable as error:
            return ReplyResponse(
                texts=(),
                raw=raw,
                latency_s=time.perf_counter() - started,
                error=str(error),
                transient=Transient(),
            )
        latency = time.perf_counter() - started
        raw["response"] = response
        raw["replica"] = self.base_urls[replica]
        usage = usage_of(response)
        try:
            choices = all_choices(response)
            texts = replies_of(
                [reply_text(choice) for choice in choices],
                request.n,
                [choice.get("finish_reason") for choice in choices],
            )
        except ReplyError as error:
            return ReplyResponse(
                texts=(), raw=raw, usage=usage, latency_s=latency, error=str(error)
            )
        return ReplyResponse(texts=texts, raw=raw, usage=usage, latency_s=latency)

    # ------------------------------------------------------------ the manifest and closing

    def describe(self) -> dict[str, str]:
        serve = self.settings.serve
        facts = {
            "provider": self.model.provider,
            "served_model": self.model.name,
            "base_urls": " ".join(self.base_urls),
            "top_logprobs": str(self.settings.top_k),
            "readout": "prefill (continue_final_message) + next-token top_logprobs; "
            "prompt_logprobs for multi-character options",
            "logprobs_mode": serve.logprobs_mode
            if serve is not None
            else f"not reported by the server (vLLM's default: {SERVER_DEFAULT_LOGPROBS_MODE})",
            "openai_sdk": openai.__version__,
        }
        versions = sorted(set(self._versions.values()))
        facts["vllm_version"] = ", ".join(versions) if versions else "unknown (not reached)"
        if serve is not None:
            facts["served_from"] = serve.model or self.model.name
            facts["launched"] = "; ".join(
                f"pid {server.pid} port {server.plan.port} gpus "
                f"{server.plan.gpus if server.plan.gpus is not None else 'all'} "
                f"log {server.plan.log_path}"
                for server in self._servers
            )
            facts["tensor_parallel_size"] = str(serve.tensor_parallel_size)
            facts["pipeline_parallel_size"] = str(serve.pipeline_parallel_size)
        return facts

    async def aclose(self) -> None:
        """Stop the servers mindshift started; close the HTTP client if it is ours.

        The SDK clients share that one HTTP client and hold nothing else.
        """
        try:
            await stop_servers(self._servers)
        finally:
            if self._owns_http:
                await self._http.aclose()


class _Unreadable(ReplyError):
    """A body that is no JSON: cut short or garbled on the way, so worth another attempt."""
