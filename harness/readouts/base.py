"""What every readout is: a way to answer a trial's ChoiceRequest through a backend.

A readout turns each trial call into the backend calls it needs (token logprobs through
`answer`, free-text replies through `reply`) and combines what comes back into one
`ChoiceResponse`: the answer, the option probabilities (`OptionReadout`) and how they were
obtained (`ReadoutDetail`). The engine stores that response as one record, whatever the
readout, so every measure reads every readout the same way.

A readout makes one attempt at each of its steps. A step that fails transiently fails the
trial call transiently (the runner's retries then make the whole call again, with the same
seeds); any other failure is the call's failure, with its reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from mindshift.harness.models.base import ModelBackend
from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    Message,
    OptionReadout,
    ReadoutDetail,
    ReadoutName,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

ANSWER_TOKENS = 16
"""Room for a bare option letter (and a stray "**" or "The answer is")."""
STATED_TOKENS = 48
"""Room for an answer line and a confidence line."""


@dataclass(frozen=True)
class CallShape:
    """What one trial call costs under a readout: for the dry-run estimate and `cost`."""

    requests: int
    """Provider requests per trial call."""
    outputs: int
    """Generated replies per trial call (n samples in one request count n)."""
    follow_ups: int = 0
    """Of `requests`, those that replay the first reply (their prompts are longer)."""
    note: str = ""


def total_usage(parts: Sequence[Usage]) -> Usage:
    return Usage(
        input_tokens=sum(part.input_tokens for part in parts),
        output_tokens=sum(part.output_tokens for part in parts),
        reasoning_tokens=sum(part.reasoning_tokens for part in parts),
        cached_tokens=sum(part.cached_tokens for part in parts),
    )


def step_seed(request: ChoiceRequest, step: str) -> int:
    """The seed of a readout's later step: derived from the trial id, like the first."""
    return seed_from_id(request.trial_id, f"readout|{step}")


class Readout(ABC):
    """One way to read an answer and its confidence."""

    name: ReadoutName

    @abstractmethod
    async def read(
        self, backend: ModelBackend, requests: Sequence[ChoiceRequest]
    ) -> list[ChoiceResponse]:
        """One response per request, in order (failures as responses, as backends do)."""

    @abstractmethod
    def shape(self, backend_takes_n: bool) -> CallShape:
        """The provider requests and replies one trial call takes."""

    def reply_request(
        self,
        request: ChoiceRequest,
        messages: tuple[Message, ...],
        asked: Asked,
        *,
        n: int = 1,
        max_tokens: int = ANSWER_TOKENS,
        step: str | None = None,
    ) -> ReplyRequest:
        return ReplyRequest(
            trial_id=request.trial_id,
            stage=request.stage,
            messages=messages,
            labels=request.prompt.labels,
            temperature=request.temperature,
            seed=request.seed if step is None else step_seed(request, step),
            asked=asked,
            n=n,
            max_tokens=max_tokens,
            facts=request.facts,
        )


@dataclass
class Steps:
    """What a multi-step readout gathered for one trial, turned into its response."""

    name: ReadoutName
    raws: list[JsonValue]
    usages: list[Usage]
    latency_s: float = 0.0
    replies: tuple[str, ...] = ()

    def add(self, response: ReplyResponse | ChoiceResponse) -> None:
        self.raws.append(response.raw)
        self.usages.append(response.usage)
        self.latency_s += response.latency_s
        if isinstance(response, ReplyResponse):
            self.replies = (*self.replies, *response.texts)

    def failed(self, response: ReplyResponse | ChoiceResponse) -> ChoiceResponse:
        """The trial's failure, as the failed step says (transient when it was)."""
        self.add(response)
        return self.failure(response.error or "no answer", transient=response.transient)

    def failure(self, error: str, *, transient: Transient | None = None) -> ChoiceResponse:
        return ChoiceResponse(
            choice=None,
            readout=None,
            raw={"steps": self.raws},
            usage=total_usage(self.usages),
            latency_s=self.latency_s,
            error=f"{self.name} readout: {error}",
            transient=transient,
            readout_detail=ReadoutDetail(method=self.name, replies=self.replies),
        )

    def success(self, choice: str, readout: OptionReadout, detail: ReadoutDetail) -> ChoiceResponse:
        return ChoiceResponse(
            choice=choice,
            readout=readout,
            raw={"steps": self.raws},
            usage=total_usage(self.usages),
            latency_s=self.latency_s,
            readout_detail=detail,
        )
