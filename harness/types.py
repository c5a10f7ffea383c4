"""The vocabulary shared by paradigms, backends and the runner.

Paradigms build `ChoiceRequest`s; backends answer them with `ChoiceResponse`s; the runner
stores both. Nothing here knows about a particular paradigm or a particular provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["system", "user", "assistant"]
ReadoutName = Literal["logprobs", "sampling", "verbal", "verbal-2stage", "ptrue"]
"""How a call's confidence is read (`harness.readouts`): token log-probabilities; the
frequency of N sampled answers; a confidence the model states in the same reply (`verbal`)
or in a follow-up turn (`verbal-2stage`); the probability it gives "true" for its own answer
(`ptrue`)."""
JsonValue = Any
"""A value that survives `json.dumps` unchanged (used for free-form records)."""


@dataclass(frozen=True)
class Item:
    """One multiple-choice question."""

    item_id: str
    question: str
    labels: tuple[str, ...]
    options: tuple[str, ...]
    """Option texts, in the order of `labels`."""
    correct: str
    """The label of the correct option."""
    meta: dict[str, JsonValue] = field(default_factory=dict)
    """Domain facts worth keeping (the city, its true latitude, the foil's offset, ...)."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "id": self.item_id,
            "question": self.question,
            "labels": list(self.labels),
            "options": list(self.options),
            "correct": self.correct,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> Item:
        """The item of a stored record (`harness.record` checked its shape)."""
        return cls(
            item_id=str(data["id"]),
            question=str(data.get("question", "")),
            labels=tuple(data.get("labels") or ()),
            options=tuple(data.get("options") or ()),
            correct=str(data["correct"]),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True)
class Message:
    """One chat message of a prompt."""

    role: Role
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Prompt:
    """A multiple-choice prompt: chat messages, then an answer prefix the model continues.

    The option label is read from the model's next token after `answer_prefix`, which is
    written as the beginning of the assistant turn (a "prefill"), so every backend reads the
    label at the same, known position.
    """

    messages: tuple[Message, ...]
    answer_prefix: str
    labels: tuple[str, ...]
    """Option labels in display order, e.g. ("A", "B"). The readout is over these labels."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "messages": [m.to_json() for m in self.messages],
            "answer_prefix": self.answer_prefix,
            "labels": list(self.labels),
        }


class TurnFacts(BaseModel):
    """The structured facts a turn's prompt states in words, in a protocol's own schema.

    Each protocol subclasses this with the fields its prompts express (the earlier answer,
    what was displayed, what was advised, ...). The engine never reads them: it hands them to
    the backend with the request and stores their JSON with the call (`request.situation`).
    Language models ignore them; a simulated agent reads them instead of the text, which is
    what lets the analysis check that it recovers the agent's known parameters.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form: the fields the protocol set, in declaration order."""
        return self.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True)
class ChoiceRequest:
    """One model call: a prompt, the sampling settings, and the trial it belongs to.

    `facts` carries the structured facts of the turn (see `TurnFacts`).
    """

    trial_id: str
    stage: int
    prompt: Prompt
    temperature: float
    seed: int
    """Per-call seed derived from the trial id: sampling is reproducible and resumable."""
    facts: TurnFacts | None = None
    asked: Asked | None = None
    """None: the turn's own question. Set when a readout asks something else in the call
    (P(True) by logprobs asks whether `asked.proposed` is true); simulated agents read it."""

    def situation_json(self) -> dict[str, JsonValue]:
        """The facts as stored with the call ({} when the turn states none)."""
        return {} if self.facts is None else self.facts.to_json()


@dataclass(frozen=True)
class OptionReadout:
    """Probabilities of the option labels at the answer position, as far as they were seen.

    `mass[label]` is the raw next-token probability of the label (token variants such as "A"
    and " A" merged), or None when the label was not among the tokens the provider returned
    (censored). For a censored label `upper_bound[label]` is the largest probability it can
    have had (the smallest probability that was returned). `probs` renormalises `mass` over
    the labels and is None whenever any label is censored: no probability is ever invented.
    """

    mass: dict[str, float | None]
    probs: dict[str, float] | None
    outside_mass: float | None
    """Probability of next tokens that are no option label; None when it cannot be known."""
    censored: bool
    upper_bound: dict[str, float] = field(default_factory=dict)
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)
    """The most likely next tokens and their log-probabilities, as returned or computed."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "mass": self.mass,
            "probs": self.probs,
            "outside_mass": self.outside_mass,
            "censored": self.censored,
            "upper_bound": self.upper_bound,
            "top_logprobs": [[tok, lp] for tok, lp in self.top_logprobs],
        }

    @staticmethod
    def probs_from_json(data: dict[str, JsonValue]) -> dict[str, float] | None:
        """A stored readout's `probs` (`harness.record` checked them): None when stored as
        null. Readers that take only the probabilities convert them here too."""
        probs = data.get("probs")
        return None if probs is None else {str(k): float(v) for k, v in probs.items()}

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> OptionReadout:
        """The readout of a stored record (`harness.record` checked `probs`)."""
        probs = cls.probs_from_json(data)
        return cls(
            mass=dict(data.get("mass") or {}),
            probs=probs,
            outside_mass=data.get("outside_mass"),
            censored=bool(data.get("censored", probs is None)),
            upper_bound=dict(data.get("upper_bound") or {}),
            top_logprobs=[(str(tok), float(lp)) for tok, lp in data.get("top_logprobs") or []],
        )


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them (cost is computed later from a table).

    The same meaning for every provider, so one price table applies: `input_tokens` counts
    every prompt token, `cached_tokens` those of them served from the provider's cache;
    `output_tokens` every billed output token, `reasoning_tokens` those of them spent on
    hidden reasoning (OpenAI counts reasoning inside its completion tokens; Gemini reports
    thoughts apart, and its backend adds them in).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, JsonValue] | None) -> Usage:
        """The usage of a stored record; counts it lacks are 0."""
        data = data or {}
        return cls(
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
            reasoning_tokens=int(data.get("reasoning_tokens") or 0),
            cached_tokens=int(data.get("cached_tokens") or 0),
        )


@dataclass(frozen=True)
class Transient:
    """Marks a failed call that may succeed if tried again (rate limit, 5xx, network, timeout).

    Backends make one attempt per call and say here whether it is worth another; the
    runner's retry policy (`harness.retry`) decides when, so attempts are counted in one
    place and rate limits reach the concurrency limiter.
    """

    rate_limited: bool = False
    """HTTP 429: the provider asks for less concurrency, not only for a later attempt."""
    retry_after_s: float | None = None
    """How long the provider asked to wait (Retry-After), when it said."""


@dataclass(frozen=True)
class ChoiceResponse:
    """A backend's answer to one `ChoiceRequest`."""

    choice: str | None
    """The sampled option label; None only when the call failed (see `error`)."""
    readout: OptionReadout | None
    raw: JsonValue
    """The provider's response as received (or, for in-process models, what was computed)."""
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    transient: Transient | None = None
    """Set on a failure that a later attempt may fix (see `Transient`); None otherwise."""
    attempt_errors: tuple[str, ...] = ()
    """The errors of the attempts before this one (filled in by the runner's retries)."""
    readout_detail: ReadoutDetail | None = None
    """How a readout other than logprobs arrived at `readout` (None: token logprobs)."""


AskedKind = Literal["answer", "answer-and-confidence", "confidence", "true-or-false"]


@dataclass(frozen=True)
class Asked:
    """What a free-text reply is asked for, in structured form (its text says it in words).

    Language models read the text; a simulated agent reads this instead, as it reads the
    turn's facts: `answer` (one option label), `answer-and-confidence` (a label and a
    confidence 0-100 in one reply), `confidence` (how likely `proposed`, the model's own
    answer, is correct, 0-100), `true-or-false` (whether `proposed` is the correct answer).
    """

    kind: AskedKind
    proposed: str | None = None
    options: tuple[str, ...] = ()
    """The option labels of the question `proposed` answers, when the call's own labels are
    other ones (the A) True / B) False question of a P(True) readout read by logprobs)."""


@dataclass(frozen=True)
class ReplyRequest:
    """A call for free-text replies: how readouts without logprobs ask (`harness.readouts`).

    `n` replies are sampled independently at `temperature`; a backend whose provider takes
    `n` sends one request, another sends `n` requests seeded from `seed` (reproducible).
    """

    trial_id: str
    stage: int
    messages: tuple[Message, ...]
    labels: tuple[str, ...]
    """The option labels of the question the reply is about."""
    temperature: float
    seed: int
    asked: Asked
    n: int = 1
    max_tokens: int | None = None
    """Most tokens per reply (None: the backend's default for a short reply)."""
    facts: TurnFacts | None = None
    """The turn's facts (see `TurnFacts`), for simulated agents."""
    answer_prefix: str | None = None
    """Text the assistant turn starts with (a prefill, as `Prompt.answer_prefix`); each reply
    continues it, and its text is the continuation alone. None: a free reply. Only sent to a
    backend whose `capabilities.reply_prefill` is set."""


@dataclass(frozen=True)
class ReplyResponse:
    """A backend's answer to one `ReplyRequest`: its replies' texts, or a failure."""

    texts: tuple[str, ...]
    """One text per sampled reply (empty when the call failed)."""
    raw: JsonValue
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    transient: Transient | None = None
    attempt_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadoutDetail:
    """What a readout without logprobs saw on its way to the option probabilities."""

    method: ReadoutName
    samples: tuple[str | None, ...] = ()
    """`sampling` (and `ptrue` by sampling): each sampled answer's label (None: unreadable)."""
    stated: float | None = None
    """`verbal`, `verbal-2stage`: the confidence the model stated, as a probability."""
    interval: tuple[float, float] | None = None
    """A 99 % interval for the probability of the chosen answer (`sampling`: Wilson)."""
    replies: tuple[str, ...] = ()
    """Every reply's text, as received."""
    rule: str | None = None
    """How the other options' probabilities were set (the rule for K > 2 options)."""
    answer_prefix: str | None = None
    """The prefix the replies continued (each was read as prefix + reply); None: free replies."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "method": self.method,
            "samples": list(self.samples),
            "stated": self.stated,
            "interval": None if self.interval is None else list(self.interval),
            "replies": list(self.replies),
            "rule": self.rule,
            "answer_prefix": self.answer_prefix,
        }

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> ReadoutDetail:
        interval = data.get("interval")
        return cls(
            method=data.get("method", "logprobs"),
            samples=tuple(data.get("samples") or ()),
            stated=data.get("stated"),
            interval=None if interval is None else (float(interval[0]), float(interval[1])),
            replies=tuple(str(one) for one in data.get("replies") or ()),
            rule=data.get("rule"),
            answer_prefix=data.get("answer_prefix"),
        )
