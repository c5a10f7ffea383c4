"""The Gemini API's requests, replies and errors, through the `google-genai` SDK's types.

Shared by `gemini:` single calls (`harness.models.gemini`) and its batch mode
(`harness.models.gemini_batch`). `GeminiFormat` holds one model's exact request (contents and
generation config) and reads its replies, so a batch reads an answer exactly as a single call
does. The API's JSON leaves out fields that hold their default value, so a token of
probability 1 comes without a `logProbability`: it is read as 0.0, never as missing.

A free-text reply request asks for several candidates at once (`candidateCount`, at most
`max_candidates`); each candidate is one sampled reply, read in the order of its `index`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.genai import errors as genai_errors
from google.genai import types as genai_types

from mindshift.harness.http_retry_after import retry_after_s as retry_after_s_of_headers
from mindshift.harness.models.chat_answer import (
    ReplyError,
    TokenLogprob,
    answer_format_line,
    chat_messages,
    check_single_character_labels,
    read_reply,
    reply_response,
)
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.logprob_check import PROBE_LABELS, PROBE_QUESTION
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    Message,
    OptionReadout,
    Prompt,
    ReplyRequest,
    Usage,
)

SEED_RANGE = 2**31
"""Gemini's seed is a 32-bit signed integer."""
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that no retry or later trial can fix (key, permission, model name): the run stops."""


def contents_of(prompt: Prompt) -> tuple[str | None, list[dict[str, Any]]]:
    """System instruction and `contents` (Gemini's roles) of a prompt, answer format added."""
    return contents_of_messages(chat_messages(prompt))


def contents_of_messages(
    messages: list[dict[str, str]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """System instruction and `contents` of chat messages, as they are: system messages
    become the instruction, assistant messages `model` turns."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            system.append(message["content"])
        else:
            role = "model" if message["role"] == "assistant" else "user"
            contents.append({"role": role, "parts": [{"text": message["content"]}]})
    return ("\n\n".join(system) if system else None), contents


def messages_json(messages: tuple[Message, ...]) -> list[dict[str, str]]:
    return [message.to_json() for message in messages]


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


def usage_sum(usages: list[Usage]) -> Usage:
    """The usage of several requests made for one call."""
    return Usage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        reasoning_tokens=sum(u.reasoning_tokens for u in usages),
        cached_tokens=sum(u.cached_tokens for u in usages),
    )


def candidates_in_order(
    response: genai_types.GenerateContentResponse,
) -> list[genai_types.Candidate]:
    """The candidates of a response by their `index` (the API omits an index of 0)."""
    numbered = enumerate(response.candidates or [])
    ordered = sorted(numbered, key=lambda pair: pair[1].index or 0)
    return [candidate for _, candidate in ordered]


def reply_texts(
    response: genai_types.GenerateContentResponse, count: int
) -> tuple[list[str], list[object]]:
    """The texts of the `count` candidates asked of a response, in order (a missing or
    blocked one empty), and the finish reasons (the prompt's block reason when there is no
    candidate at all)."""
    ordered = candidates_in_order(response)
    texts = [reply_text(candidate) for candidate in ordered][:count]
    texts += [""] * (count - len(texts))
    reasons: list[object] = [
        None if c.finish_reason is None else str(c.finish_reason.value) for c in ordered
    ]
    feedback = response.prompt_feedback
    if not ordered and feedback is not None and feedback.block_reason is not None:
        reasons = [f"prompt blocked: {feedback.block_reason.value}"]
    return texts, reasons


def reply_text(candidate: genai_types.Candidate) -> str:
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
    return retry_after_s_of_headers(headers) if headers is not None else None


@dataclass(frozen=True)
class GeminiFormat:
    """The exact request of one `gemini:` model, and how its replies are read (the same for
    a single call and a batch line)."""

    model: str
    """The model name every request names."""
    settings: GeminiSettings

    def config(
        self,
        *,
        temperature: float,
        seed: int,
        system: str | None,
        logprobs: bool | None = None,
        candidates: int = 1,
        max_output_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The generation config of one call, as a JSON-able dict (what the record shows).

        `logprobs`: ask for them (default: unless choice-only); `candidates`: sampled
        replies; `max_output_tokens`: default the entry's budget for an answer."""
        config: dict[str, Any] = {
            "temperature": temperature,
            "seed": seed % SEED_RANGE,
            "candidate_count": candidates,
            "max_output_tokens": self.settings.output_tokens
            if max_output_tokens is None
            else max_output_tokens,
        }
        if system is not None:
            config["system_instruction"] = system
        wanted = not self.settings.choice_only if logprobs is None else logprobs
        if wanted:
            config["response_logprobs"] = True
            config["logprobs"] = self.settings.top_k
        if self.settings.thinking_budget is not None:
            config["thinking_config"] = {"thinking_budget": self.settings.thinking_budget}
        return config

    def probe(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The preflight's logprob probe (`harness.models.logprob_check`): the probe
        question in the trials' answer format, with logprobs whatever the mode."""
        text = f"{PROBE_QUESTION}\n\n{answer_format_line(PROBE_LABELS)}"
        contents = [{"role": "user", "parts": [{"text": text}]}]
        config = self.config(
            temperature=1.0,
            seed=0,
            system=None,
            logprobs=True,
            max_output_tokens=self.settings.answer_tokens,
        )
        return contents, config

    def reply_request(
        self, request: ReplyRequest, *, candidates: int, seed: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The contents and config of one request for `candidates` of a reply request's
        replies: its messages as the readout wrote them, without logprobs."""
        system, contents = contents_of_messages(messages_json(request.messages))
        config = self.config(
            temperature=request.temperature,
            seed=seed,
            system=system,
            logprobs=False,
            candidates=candidates,
            max_output_tokens=self.settings.reply_tokens(request.max_tokens),
        )
        return contents, config

    def request(self, request: ChoiceRequest) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The contents and generation config of a trial's call."""
        system, contents = contents_of(request.prompt)
        config = self.config(temperature=request.temperature, seed=request.seed, system=system)
        return contents, config

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

    def dump(self, response: genai_types.GenerateContentResponse) -> JsonValue:
        """A response as the record stores it."""
        return response.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"})

    def response_from(
        self,
        response: genai_types.GenerateContentResponse,
        labels: Sequence[str],
        raw: dict[str, JsonValue],
        latency: float,
    ) -> ChoiceResponse:
        """The answer a GenerateContentResponse gives (single calls and batch results)."""
        raw["response"] = self.dump(response)
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
            reply_text(candidate),
            lambda: token_logprobs(candidate),
            labels,
            choice_only=self.settings.choice_only,
            finish_reason=candidate.finish_reason,
            raw=raw,
        )
