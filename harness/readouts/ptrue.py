"""`ptrue`: the probability the model gives "true" for its own answer (Kadavath et al. 2022).

First the model answers the trial's question. Then, replaying that answer as its turn, it is
asked whether the proposed answer is true or false (A) True, B) False). P(True) is read from
the token probabilities of A and B where the backend has them, else as the frequency of
"true" among N sampled replies. P(True) is the chosen answer's probability; the other
options share the rest evenly (`probabilities.SPREAD_RULE`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mindshift.harness.models.base import ModelBackend
from mindshift.harness.readouts.base import ANSWER_TOKENS, CallShape, Readout, Steps, step_seed
from mindshift.harness.readouts.parse import read_answer, read_true_false
from mindshift.harness.readouts.probabilities import SPREAD_RULE, from_stated, wilson_interval
from mindshift.harness.readouts.sampling import replies_of
from mindshift.harness.readouts.texts import (
    TRUE_FALSE_LABELS,
    answer_only,
    true_or_false,
    with_instruction,
)
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    Message,
    Prompt,
    ReadoutDetail,
    ReplyRequest,
)


class PTrueReadout(Readout):
    name = "ptrue"

    def __init__(self, samples: int, *, logprobs: bool) -> None:
        self.samples = samples
        self.logprobs = logprobs
        """Read P(True) from token probabilities (else from sampled replies)."""

    def shape(self, backend_takes_n: bool) -> CallShape:
        if self.logprobs:
            return CallShape(requests=2, outputs=2, follow_ups=1, note="answer, then P(True)")
        requests = 2 if backend_takes_n else 1 + self.samples
        return CallShape(
            requests=requests,
            outputs=1 + self.samples,
            follow_ups=requests - 1,
            note=f"answer, then {self.samples} sampled true/false replies",
        )

    async def read(
        self, backend: ModelBackend, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        return list(await asyncio.gather(*(self._one(backend, request) for request in requests)))

    def _question(self, request: ChoiceRequest, label: str) -> tuple[Message, ...]:
        prompt = request.prompt
        answer = f"{prompt.answer_prefix} {label}".strip()
        return (
            *prompt.messages,
            Message("assistant", answer),
            Message("user", true_or_false(label)),
        )

    async def _one(self, backend: ModelBackend, request: ChoiceRequest) -> ChoiceResponse:
        steps = Steps(self.name, [], [])
        labels = request.prompt.labels
        if self.logprobs:
            (answered,) = await backend.answer([request])
            if answered.error is not None or answered.choice is None:
                return steps.failed(answered)
            steps.add(answered)
            label = answered.choice
        else:
            messages = with_instruction(request.prompt.messages, answer_only(labels))
            first = self.reply_request(request, messages, Asked("answer"), max_tokens=ANSWER_TOKENS)
            (reply,) = await backend.reply([first])
            if reply.error is not None:
                return steps.failed(reply)
            steps.add(reply)
            text = reply.texts[0] if reply.texts else ""
            found = read_answer(text, labels)
            if found is None:
                return steps.failure(f"the reply names no option: {text[:200]!r}")
            label = found
        question = self._question(request, label)
        if self.logprobs:
            judged = ChoiceRequest(
                trial_id=request.trial_id,
                stage=request.stage,
                prompt=Prompt(question, request.prompt.answer_prefix, TRUE_FALSE_LABELS),
                temperature=request.temperature,
                seed=step_seed(request, "ptrue"),
                facts=request.facts,
                asked=Asked("true-or-false", proposed=label, options=labels),
            )
            (verdict,) = await backend.answer([judged])
            if verdict.error is not None:
                return steps.failed(verdict)
            steps.add(verdict)
            if verdict.readout is None or verdict.readout.probs is None:
                return steps.failure("the true/false question came back without probabilities")
            p_true = verdict.readout.probs[TRUE_FALSE_LABELS[0]]
            detail = ReadoutDetail(method=self.name, stated=p_true, rule=SPREAD_RULE)
            return steps.success(label, from_stated(label, p_true, labels), detail)
        ask = ReplyRequest(
            trial_id=request.trial_id,
            stage=request.stage,
            messages=question,
            labels=labels,  # the question's: the reply is read as True/False (A/B)
            temperature=request.temperature,
            seed=step_seed(request, "ptrue"),
            asked=Asked("true-or-false", proposed=label),
            n=self.samples,
            max_tokens=ANSWER_TOKENS,
            facts=request.facts,
        )
        verdicts = await replies_of(backend, ask)
        if verdicts.error is not None:
            return steps.failed(verdicts)
        steps.add(verdicts)
        judged_true = [read_true_false(text) for text in verdicts.texts]
        readable = [one for one in judged_true if one is not None]
        if not readable:
            return steps.failure("no true/false reply could be read")
        trues = sum(1 for one in readable if one)
        p_true = trues / len(readable)
        detail = ReadoutDetail(
            method=self.name,
            samples=tuple(
                None if one is None else ("True" if one else "False") for one in judged_true
            ),
            stated=p_true,
            interval=wilson_interval(trues, len(readable)),
            replies=steps.replies,
            rule=SPREAD_RULE,
        )
        return steps.success(label, from_stated(label, p_true, labels), detail)
