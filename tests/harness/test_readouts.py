"""The readouts without logprobs, on a scripted backend: what they ask, how they read the
replies, and what they make of failures (hand-computed cases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from mindshift.harness.batch_api import BatchApi, Prepared, PreparedReply
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models.base import Capabilities, ModelBackend
from mindshift.harness.models.logprob_check import LogprobsUnusable
from mindshift.harness.readouts import (
    AutoReadoutBackend,
    ReadoutBackend,
    check_readout,
    make_readout,
    readout_name_of,
)
from mindshift.harness.readouts.parse import UnreadableReply, read_confidence, read_stated_answer
from mindshift.harness.readouts.probabilities import from_stated, wilson_interval
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    Message,
    OptionReadout,
    Prompt,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

REPLIES = Capabilities(
    logprobs=False, top_k_limit=None, prefill=False, prompt_logprobs=False, batch=False,
    replies=True, reply_n=True,
)  # fmt: skip


class Scripted(ModelBackend):
    """Replies from a function of the request; logs every request."""

    def __init__(
        self,
        replies: Callable[[ReplyRequest], ReplyResponse],
        capabilities: Capabilities = REPLIES,
        answers: Callable[[ChoiceRequest], ChoiceResponse] | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.replies_of = replies
        self.answers_of = answers
        self.asked: list[ReplyRequest | ChoiceRequest] = []

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        self.asked.extend(requests)
        return [self.replies_of(request) for request in requests]

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        assert self.answers_of is not None
        self.asked.extend(requests)
        return [self.answers_of(request) for request in requests]


def readout_of(probs: dict[str, float]) -> OptionReadout:
    return OptionReadout(dict(probs.items()), probs, 0.0, False)


def trial(labels: tuple[str, ...] = ("A", "B")) -> ChoiceRequest:
    prompt = Prompt((Message("user", "Which city is further north?"),), "Answer:", labels)
    return ChoiceRequest(trial_id="t1", stage=1, prompt=prompt, temperature=1.0, seed=7)


def texts(*replies: str, usage: Usage | None = None) -> Callable[[ReplyRequest], ReplyResponse]:
    return lambda request: ReplyResponse(texts=replies, raw=None, usage=usage or Usage())


def read(
    backend: ModelBackend, name: str, samples: int = 5, labels: tuple[str, ...] = ("A", "B")
) -> ChoiceResponse:
    readout = make_readout(name, samples, backend.capabilities)
    assert readout is not None
    (response,) = asyncio.run(ReadoutBackend(backend, readout).answer([trial(labels)]))
    return response


def test_sampling_reads_frequencies_and_answers_with_the_first_readable_sample() -> None:
    backend = Scripted(texts("maybe", "B", "A", "B.", "**B**"))
    response = read(backend, "sampling", samples=5)
    assert response.choice == "B"
    assert response.readout is not None and response.readout.probs == {"A": 0.25, "B": 0.75}
    assert response.readout.outside_mass == pytest.approx(0.2)  # one of five unreadable
    detail = response.readout_detail
    assert detail is not None and detail.samples == (None, "B", "A", "B", "B")
    assert detail.interval == wilson_interval(3, 4)
    (asked,) = backend.asked
    assert isinstance(asked, ReplyRequest) and asked.n == 5 and asked.seed == 7
    assert asked.messages[-1].content.endswith("Reply with only the letter of your answer: A or B.")


def test_sampling_without_n_sends_n_requests_with_distinct_seeds() -> None:
    caps = Capabilities(**{**REPLIES.__dict__, "reply_n": False})
    backend = Scripted(texts("A", usage=Usage(input_tokens=10, output_tokens=1)), caps)
    response = read(backend, "sampling", samples=4)
    assert [r.seed for r in backend.asked if isinstance(r, ReplyRequest)] == [7, 8, 9, 10]
    assert response.usage == Usage(input_tokens=40, output_tokens=4)
    assert response.readout is not None and response.readout.probs == {"A": 1.0, "B": 0.0}


def test_sampling_continues_the_answer_prefix_where_the_backend_prefills_replies() -> None:
    prefills = Capabilities(**{**REPLIES.__dict__, "reply_prefill": True})
    # The replies continue "Answer:": " A" alone names A only as prefix + reply.
    backend = Scripted(texts(" A", " B", " The", " B"), prefills)
    response = read(backend, "sampling", samples=4)
    (asked,) = backend.asked
    assert isinstance(asked, ReplyRequest) and asked.answer_prefix == "Answer:"
    # The logprobs readout's own words: the trial's messages, no instruction added.
    assert asked.messages == trial().prompt.messages
    detail = response.readout_detail
    assert detail is not None and detail.answer_prefix == "Answer:"
    assert detail.samples == ("A", "B", None, "B")
    assert detail.replies == (" A", " B", " The", " B")
    assert response.readout is not None and response.readout.probs == pytest.approx(
        {"A": 1 / 3, "B": 2 / 3}
    )


def test_sampling_replies_freely_where_the_backend_cannot_prefill_them() -> None:
    # `prefill` (choice calls) without `reply_prefill` is Anthropic's case: still free replies.
    for caps in (REPLIES, Capabilities(**{**REPLIES.__dict__, "prefill": True})):
        backend = Scripted(texts("A", "B"), caps)
        response = read(backend, "sampling", samples=2)
        (asked,) = backend.asked
        assert isinstance(asked, ReplyRequest) and asked.answer_prefix is None
        assert asked.messages[-1].content.endswith(
            "Reply with only the letter of your answer: A or B."
        )
        assert response.readout_detail is not None
        assert response.readout_detail.answer_prefix is None


def test_sampling_without_n_keeps_the_answer_prefix_on_every_request() -> None:
    caps = Capabilities(**{**REPLIES.__dict__, "reply_n": False, "reply_prefill": True})
    backend = Scripted(texts(" B"), caps)
    response = read(backend, "sampling", samples=3)
    assert [r.answer_prefix for r in backend.asked if isinstance(r, ReplyRequest)] == [
        "Answer:"
    ] * 3
    assert response.readout_detail is not None and response.readout_detail.samples == ("B",) * 3


def test_the_wilson_interval_by_hand() -> None:
    # p = 0.75, n = 4, z = 2.5758: centre (0.75 + z^2/8) / (1 + z^2/4), half as in Wilson.
    low, high = wilson_interval(3, 4)
    z = 2.5758293035489004
    centre = (0.75 + z * z / 8) / (1 + z * z / 4)
    half = z * ((0.75 * 0.25 / 4 + z * z / 64) ** 0.5) / (1 + z * z / 4)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_verbal_states_the_chosen_option_and_spreads_the_rest_evenly() -> None:
    response = read(
        Scripted(texts("Answer: C\nConfidence: 70")), "verbal", labels=("A", "B", "C", "D")
    )
    assert response.choice == "C"
    assert response.readout is not None
    assert response.readout.probs == pytest.approx({"A": 0.1, "B": 0.1, "C": 0.7, "D": 0.1})
    assert response.readout_detail is not None and response.readout_detail.stated == 0.7


def test_an_unreadable_verbal_reply_is_a_failure_with_its_reason_and_text() -> None:
    response = read(Scripted(texts("I am not sure at all")), "verbal")
    assert response.choice is None and response.error is not None
    assert "names no option" in response.error
    assert response.readout_detail is not None
    assert response.readout_detail.replies == ("I am not sure at all",)


def test_two_stage_verbal_asks_its_confidence_question_after_replaying_the_answer() -> None:
    def script(request: ReplyRequest) -> ReplyResponse:
        if request.asked.kind == "answer":
            return ReplyResponse(texts=("B",), raw=None)
        assert request.asked.proposed == "B"
        assert [m.role for m in request.messages] == ["user", "assistant", "user"]
        assert request.messages[1].content == "B"
        return ReplyResponse(texts=("About 65%.",), raw=None)

    response = read(Scripted(script), "verbal-2stage")
    assert response.choice == "B"
    assert response.readout is not None and response.readout.probs == pytest.approx(
        {"A": 0.35, "B": 0.65}
    )


def test_ptrue_by_sampling_counts_true_replies() -> None:
    def script(request: ReplyRequest) -> ReplyResponse:
        if request.asked.kind == "answer":
            return ReplyResponse(texts=("A",), raw=None)
        assert request.asked.kind == "true-or-false" and request.n == 4
        return ReplyResponse(texts=("A", "True", "B", "False"), raw=None)

    response = read(Scripted(script), "ptrue", samples=4)
    assert response.choice == "A"
    assert response.readout is not None and response.readout.probs == {"A": 0.5, "B": 0.5}


def test_ptrue_by_logprobs_reads_the_probability_of_true() -> None:
    caps = Capabilities(
        logprobs=True, top_k_limit=None, prefill=True, prompt_logprobs=True, batch=True
    )

    def answers(request: ChoiceRequest) -> ChoiceResponse:
        if "Proposed answer" not in request.prompt.messages[-1].content:
            return ChoiceResponse("A", readout_of({"A": 0.9, "B": 0.1}), raw=None)
        assert request.prompt.labels == ("A", "B")
        return ChoiceResponse("A", readout_of({"A": 0.8, "B": 0.2}), raw=None)

    response = read(Scripted(texts(), caps, answers), "ptrue")
    assert response.choice == "A"
    assert response.readout is not None and response.readout.probs == pytest.approx(
        {"A": 0.8, "B": 0.2}
    )


def test_a_transient_step_failure_fails_the_trial_transiently() -> None:
    def script(request: ReplyRequest) -> ReplyResponse:
        return ReplyResponse(texts=(), raw=None, error="HTTP 529", transient=Transient())

    response = read(Scripted(script), "sampling")
    assert response.error == "sampling readout: HTTP 529" and response.transient is not None


def test_parsing_confidences() -> None:
    assert read_confidence("Confidence: 85") == 0.85
    assert read_confidence("0.3") == 0.3
    assert read_confidence("I'd say 40/100") == 0.4
    for bad in ("between 60 and 70", "150", "no idea"):
        with pytest.raises(UnreadableReply):
            read_confidence(bad)
    # The option's own digit is not the confidence.
    assert read_stated_answer("Answer: 2\nConfidence: 90", ["1", "2"]).confidence == 0.9


def test_the_spread_rule_keeps_a_distribution() -> None:
    readout = from_stated("B", 0.4, ["A", "B", "C"])
    assert readout.probs is not None and sum(readout.probs.values()) == pytest.approx(1.0)


def test_a_readout_the_backend_cannot_give_is_refused_in_one_line() -> None:
    logprobs_only = Capabilities(
        logprobs=True, top_k_limit=20, prefill=False, prompt_logprobs=False, batch=True
    )
    with pytest.raises(ConfigError, match="needs free-text replies"):
        check_readout("m", "x:y", "sampling", logprobs_only)
    with pytest.raises(ConfigError, match='readout = "sampling" or "verbal"'):
        check_readout("m", "x:y", "logprobs", REPLIES)
    assert readout_name_of(Scripted(texts())) == "choice-only"


class Probed(Scripted):
    """Logprobs on offer; the preflight finds them usable or not."""

    def __init__(self, usable: bool) -> None:
        caps = Capabilities(**{**REPLIES.__dict__, "logprobs": True})
        super().__init__(texts("B", "B", "A", "B"), caps)
        self.usable = usable

    async def preflight(self, *, logprobs: bool = True) -> None:
        if logprobs and not self.usable:
            raise LogprobsUnusable("m", "the top logprobs are placeholders", "readout = ...")


def test_auto_keeps_usable_logprobs_and_switches_to_sampling_when_they_are_not() -> None:
    usable = AutoReadoutBackend(Probed(usable=True), samples=4)
    asyncio.run(usable.preflight())
    assert readout_name_of(usable) == "logprobs"
    assert "usable" in usable.describe()["readout_why"]
    unusable = AutoReadoutBackend(Probed(usable=False), samples=4)
    asyncio.run(unusable.preflight())
    assert readout_name_of(unusable) == "sampling"
    assert (
        unusable.describe()["readout_why"] == "logprobs unusable: the top logprobs are placeholders"
    )
    (response,) = asyncio.run(unusable.answer([trial()]))
    assert response.readout is not None and response.readout.probs == {"A": 0.25, "B": 0.75}


class FakeBatch:
    """A batch API that answers every reply line from a script."""

    max_requests = 100
    max_bytes = 1 << 20

    def __init__(self, answer: Callable[[ReplyRequest], ReplyResponse]) -> None:
        self.answer = answer

    def prepare_reply(self, request: ReplyRequest) -> PreparedReply:
        return Prepared(request=request, line={"n": request.n, "seed": request.seed})

    async def collect_replies(
        self, batch_id: str, requests: Sequence[ReplyRequest]
    ) -> list[ReplyResponse]:
        return [self.answer(request) for request in requests]


class Batching(Scripted):
    def __init__(self, caps: Capabilities = REPLIES) -> None:
        super().__init__(texts("Answer: A\nConfidence: 90"), caps)

    def batch_api(self) -> BatchApi:
        return FakeBatch(texts("Answer: A\nConfidence: 90"))  # type: ignore[return-value]


def test_one_step_readouts_batch_one_line_per_trial_and_read_it_as_outside_a_batch() -> None:
    backend = Batching()
    readout = make_readout("verbal", 5, backend.capabilities)
    assert readout is not None
    api = ReadoutBackend(backend, readout).batch_api()
    assert api is not None
    prepared = api.prepare(trial())
    assert prepared.line == {"n": 1, "seed": 7} and prepared.request == trial()
    (response,) = asyncio.run(api.collect("b1", [trial()]))
    assert response.choice == "A" and response.readout is not None
    assert response.readout.probs == pytest.approx({"A": 0.9, "B": 0.1})


def test_readouts_that_ask_twice_are_refused_under_batch_in_one_line() -> None:
    backend = Batching()
    for name in ("verbal-2stage", "ptrue"):
        readout = make_readout(name, 5, backend.capabilities)
        assert readout is not None
        with pytest.raises(UserError, match="cannot run under --batch"):
            ReadoutBackend(backend, readout).batch_api()
    no_n = Batching(Capabilities(**{**REPLIES.__dict__, "reply_n": False}))
    sampling = make_readout("sampling", 5, no_n.capabilities)
    assert sampling is not None
    with pytest.raises(UserError, match="takes no n"):
        ReadoutBackend(no_n, sampling).batch_api()
