"""`verbal` and `verbal-2stage`: the confidence the model states in words.

One-stage: the prompt asks for the answer and a confidence 0-100 in one reply ("Answer: X",
"Confidence: NN"). Two-stage: the prompt asks for the answer alone; then, replaying that
reply as the assistant's turn, a follow-up asks "How likely is it that your answer is
correct?" (after Tian et al. 2023 and Xiong et al. 2024). The stated number over 100 is the
chosen answer's probability, the other options share the rest evenly
(`probabilities.SPREAD_RULE`). A reply that cannot be read is the call's failure, with the
reason; its text is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mindshift.harness.models.base import ModelBackend
from mindshift.harness.readouts.base import ANSWER_TOKENS, STATED_TOKENS, CallShape, Readout, Steps
from mindshift.harness.readouts.parse import (
    UnreadableReply,
    read_answer,
    read_confidence,
    read_stated_answer,
)
from mindshift.harness.readouts.probabilities import SPREAD_RULE, from_stated
from mindshift.harness.readouts.texts import (
    CONFIDENCE_QUESTION,
    answer_and_confidence,
    answer_only,
    with_instruction,
)
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    Message,
    ReadoutDetail,
    ReplyRequest,
    ReplyResponse,
)


class VerbalReadout(Readout):
    """One stage: the answer and its stated confidence in one reply."""

    name = "verbal"

    def shape(self, backend_takes_n: bool) -> CallShape:
        return CallShape(requests=1, outputs=1, note="one reply stating answer and confidence")

    def first_request(self, request: ChoiceRequest) -> ReplyRequest:
        instruction = answer_and_confidence(request.prompt.labels)
        messages = with_instruction(request.prompt.messages, instruction)
        return self.reply_request(
            request, messages, Asked("answer-and-confidence"), max_tokens=STATED_TOKENS
        )

    async def read(
        self, backend: ModelBackend, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        replies = await backend.reply([self.first_request(request) for request in requests])
        return [
            self.combine(request, reply) for request, reply in zip(requests, replies, strict=True)
        ]

    def combine(self, request: ChoiceRequest, reply: ReplyResponse) -> ChoiceResponse:
        steps = Steps(self.name, [], [])
        if reply.error is not None:
            return steps.failed(reply)
        steps.add(reply)
        text = reply.texts[0] if reply.texts else ""
        labels = request.prompt.labels
        try:
            stated = read_stated_answer(text, labels)
        except UnreadableReply as error:
            return steps.failure(f"{error}: {text[:200]!r}")
        detail = ReadoutDetail(
            method=self.name, stated=stated.confidence, replies=reply.texts, rule=SPREAD_RULE
        )
        return steps.success(
            stated.label, from_stated(stated.label, stated.confidence, labels), detail
        )


class TwoStageVerbalReadout(Readout):
    """Two stages: the answer, then "how likely is it that your answer is correct?"."""

    name = "verbal-2stage"

    def shape(self, backend_takes_n: bool) -> CallShape:
        return CallShape(
            requests=2, outputs=2, follow_ups=1, note="the answer, then a confidence question"
        )

    def first_request(self, request: ChoiceRequest) -> ReplyRequest:
        messages = with_instruction(request.prompt.messages, answer_only(request.prompt.labels))
        return self.reply_request(request, messages, Asked("answer"), max_tokens=ANSWER_TOKENS)

    def follow_up(
        self, request: ChoiceRequest, first: ReplyRequest, text: str, label: str
    ) -> ReplyRequest:
        messages = (
            *first.messages,
            Message("assistant", text),
            Message("user", CONFIDENCE_QUESTION),
        )
        return self.reply_request(
            request,
            messages,
            Asked("confidence", proposed=label),
            max_tokens=STATED_TOKENS,
            step="confidence",
        )

    async def read(
        self, backend: ModelBackend, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        return list(await asyncio.gather(*(self._one(backend, request) for request in requests)))

    async def _one(self, backend: ModelBackend, request: ChoiceRequest) -> ChoiceResponse:
        steps = Steps(self.name, [], [])
        first = self.first_request(request)
        (reply,) = await backend.reply([first])
        if reply.error is not None:
            return steps.failed(reply)
        steps.add(reply)
        text = reply.texts[0] if reply.texts else ""
        label = read_answer(text, request.prompt.labels)
        if label is None:
            return steps.failure(f"the reply names no option: {text[:200]!r}")
        (second,) = await backend.reply([self.follow_up(request, first, text, label)])
        if second.error is not None:
            return steps.failed(second)
        steps.add(second)
        stated_text = second.texts[0] if second.texts else ""
        try:
            confidence = read_confidence(stated_text)
        except UnreadableReply as error:
            return steps.failure(f"{error}: {stated_text[:200]!r}")
        labels = request.prompt.labels
        detail = ReadoutDetail(
            method=self.name, stated=confidence, replies=steps.replies, rule=SPREAD_RULE
        )
        return steps.success(label, from_stated(label, confidence, labels), detail)
