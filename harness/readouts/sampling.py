"""`sampling`: confidence as the frequency of N sampled answers.

The trial's prompt is answered N times at the trial's temperature: in one request with `n`
where the provider takes it (OpenAI, vLLM, the local model, the simulated agent), else in N
requests whose seeds derive from the trial id. Where the backend's replies can continue an
answer prefix (`capabilities.reply_prefill`: the local model, vLLM), the trial's own messages
are sent with the prompt's own answer prefix opening the assistant turn, exactly what the
logprobs readout reads: the two readouts then ask the same question, and the samples are
draws from the next-token distribution the logprobs describe. Elsewhere (chat APIs that
cannot prefill) a line asking for the option letter alone is appended to the last user
message instead, and the reply is free; a small model may answer that different question
differently (bench/check_sampling_vs_logprobs.py measures both). Each reply is read for an
option label (a prefilled reply as prefix + reply); the option probabilities are the labels'
frequencies among the readable replies, and the share of unreadable replies is the
readout's `outside_mass`. The readout's detail records the prefix used (None: free replies).
The trial's answer is the first readable sample (a draw from the same distribution,
reproducible from the seeds), so a later turn is built from an answer the model actually
gave. Every sample is stored, with a 99 % Wilson interval for the chosen answer's
probability.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from mindshift.harness.models.base import ModelBackend
from mindshift.harness.readouts.base import ANSWER_TOKENS, CallShape, Readout, Steps, total_usage
from mindshift.harness.readouts.parse import read_answer
from mindshift.harness.readouts.probabilities import from_samples, wilson_interval
from mindshift.harness.readouts.texts import answer_only, with_instruction
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    ReadoutDetail,
    ReplyRequest,
    ReplyResponse,
)


class SamplingReadout(Readout):
    name = "sampling"

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def shape(self, backend_takes_n: bool) -> CallShape:
        if backend_takes_n:
            return CallShape(
                requests=1,
                outputs=self.samples,
                note=f"one request with n = {self.samples}: input priced once, "
                f"{self.samples} outputs",
            )
        return CallShape(
            requests=self.samples,
            outputs=self.samples,
            note=f"{self.samples} requests (the provider takes no n)",
        )

    def first_request(self, request: ChoiceRequest, *, prefill: bool = False) -> ReplyRequest:
        """The request of N answers: after the prompt's answer prefix where the backend can
        `prefill` its replies (and the prompt has a prefix), else a free reply to the prompt
        with the instruction to give the letter alone."""
        prefix = request.prompt.answer_prefix if prefill else ""
        if prefix:
            # The prefix asks for the answer: no instruction, so the words are the logprobs
            # readout's own.
            ask = self.reply_request(
                request,
                request.prompt.messages,
                Asked("answer"),
                n=self.samples,
                max_tokens=ANSWER_TOKENS,
            )
            return replace(ask, answer_prefix=prefix)
        messages = with_instruction(request.prompt.messages, answer_only(request.prompt.labels))
        return self.reply_request(
            request, messages, Asked("answer"), n=self.samples, max_tokens=ANSWER_TOKENS
        )

    async def read(
        self, backend: ModelBackend, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        prefill = backend.capabilities.reply_prefill
        asks = [self.first_request(request, prefill=prefill) for request in requests]
        if backend.capabilities.reply_n:
            replies = await backend.reply(asks)
        else:
            replies = list(await asyncio.gather(*(_one_by_one(backend, ask) for ask in asks)))
        return [
            self.combine(request, reply, answer_prefix=ask.answer_prefix)
            for request, ask, reply in zip(requests, asks, replies, strict=True)
        ]

    def combine(
        self, request: ChoiceRequest, reply: ReplyResponse, *, answer_prefix: str | None = None
    ) -> ChoiceResponse:
        """The trial's response from its N replies; `answer_prefix`: the prefix they
        continued (each is read as prefix + reply, as the model wrote it)."""
        steps = Steps(self.name, [], [])
        if reply.error is not None:
            return steps.failed(reply)
        steps.add(reply)
        labels = request.prompt.labels
        prefix = answer_prefix or ""
        samples = tuple(read_answer(prefix + text, labels) for text in reply.texts)
        readout = from_samples(samples, labels)
        first = next((label for label in samples if label is not None), None)
        if readout is None or first is None or readout.probs is None:
            return steps.failure(f"none of the {len(samples)} replies names an option")
        readable = sum(1 for label in samples if label is not None)
        chosen = sum(1 for label in samples if label == first)
        detail = ReadoutDetail(
            method=self.name,
            samples=samples,
            interval=wilson_interval(chosen, readable),
            replies=reply.texts,
            answer_prefix=answer_prefix,
        )
        return steps.success(first, readout, detail)


async def replies_of(backend: ModelBackend, ask: ReplyRequest) -> ReplyResponse:
    """The `n` replies of one request: in one request where the backend takes `n`."""
    if backend.capabilities.reply_n or ask.n == 1:
        (reply,) = await backend.reply([ask])
        return reply
    return await _one_by_one(backend, ask)


async def _one_by_one(backend: ModelBackend, ask: ReplyRequest) -> ReplyResponse:
    """N single replies, seeds seed, seed + 1, ... (a provider without `n`): one response."""
    singles = [replace(ask, seed=(ask.seed + k) % (1 << 63), n=1) for k in range(ask.n)]
    answers = await backend.reply(singles)
    failed = next((one for one in answers if one.error is not None), None)
    usage = total_usage([one.usage for one in answers])
    raw = [one.raw for one in answers]
    latency = max((one.latency_s for one in answers), default=0.0)
    if failed is not None:
        return ReplyResponse(
            texts=(),
            raw=raw,
            usage=usage,
            latency_s=latency,
            error=failed.error,
            transient=failed.transient,
        )
    texts = tuple(text for one in answers for text in one.texts)
    return ReplyResponse(texts=texts, raw=raw, usage=usage, latency_s=latency)
