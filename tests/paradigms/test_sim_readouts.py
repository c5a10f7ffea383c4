"""The simulated agent speaks every readout (issue 12): its free-text replies are drawn from,
or state, the very belief `answer` reports, and the readouts' own parsers read them."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from mindshift.harness.readouts.parse import (
    read_answer,
    read_confidence,
    read_stated_answer,
    read_true_false,
)
from mindshift.harness.readouts.ptrue import PTrueReadout
from mindshift.harness.readouts.sampling import SamplingReadout
from mindshift.harness.readouts.verbal import TwoStageVerbalReadout, VerbalReadout
from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import (
    Asked,
    AskedKind,
    ChoiceRequest,
    Message,
    Prompt,
    ReplyRequest,
    ReplyResponse,
)
from mindshift.paradigms.agent.sim_bayes import CALL_SEED_SALT, SimBayesBackend, SimBayesParams
from mindshift.paradigms.facts import AdviceFacts

TWO = ("A", "B")
FOUR = ("A", "B", "C", "D")
BIASED = SimBayesParams(choice_support=0.8, w_same=1.0, w_opposite=2.5, noise=0.3)


def _facts(stage: int, **facts: object) -> AdviceFacts:
    return AdviceFacts.model_validate(
        {"stage": stage, "item_id": "item-7", "correct": "B", **facts}
    )


def _later(initial: str = "A", confidence: float = 0.5, **facts: object) -> AdviceFacts:
    """Turn-2 facts; `confidence` is what a readout estimated, which the agent must ignore."""
    stated: dict[str, object] = {
        "initial_choice": initial,
        "initial_confidence": confidence,
        "display": "shown",
        "advice": "opposite",
        "accuracy": 0.7,
        "advised": "B" if initial != "B" else "A",
        **facts,
    }
    return _facts(2, **stated)


def _call_seed(trial_id: str) -> int:
    return seed_from_id(trial_id, CALL_SEED_SALT)


def _reply(
    agent: SimBayesBackend,
    facts: AdviceFacts,
    kind: AskedKind,
    *,
    labels: Sequence[str] = TWO,
    n: int = 1,
    proposed: str | None = None,
    seed: int | None = None,
    trial_id: str = "trial-1",
) -> ReplyResponse:
    request = ReplyRequest(
        trial_id=trial_id,
        stage=facts.stage,
        messages=(Message("user", "q"),),
        labels=tuple(labels),
        temperature=1.0,
        seed=_call_seed(trial_id) if seed is None else seed,
        asked=Asked(kind, proposed),
        n=n,
        facts=facts,
    )
    (response,) = asyncio.run(agent.reply([request]))
    assert response.error is None
    assert len(response.texts) == n
    return response


def _choice_request(facts: AdviceFacts, labels: Sequence[str], trial_id: str) -> ChoiceRequest:
    """The trial call the planner would make (its seed is the call seed)."""
    prompt = Prompt((Message("user", "q"),), "My answer is:", tuple(labels))
    return ChoiceRequest(trial_id, facts.stage, prompt, 1.0, _call_seed(trial_id), facts)


def _answered(
    agent: SimBayesBackend, facts: AdviceFacts, labels: Sequence[str], trial_id: str
) -> tuple[str, dict[str, float]]:
    (response,) = asyncio.run(agent.answer([_choice_request(facts, labels, trial_id)]))
    assert response.choice is not None and response.readout is not None
    assert response.readout.probs is not None
    return response.choice, response.readout.probs


def _as_logprobs_stored(
    agent: SimBayesBackend, facts: AdviceFacts, labels: Sequence[str]
) -> AdviceFacts:
    """Turn-2 facts carrying the agent's own turn-1 probabilities, as the logprobs readout
    stores them (the logprobs path reads its turn-1 belief from the facts)."""
    own = _answered(agent, _facts(1), labels, "turn-1")[1]
    assert facts.initial_choice is not None
    return facts.model_copy(
        update={"initial_confidence": own[facts.initial_choice], "initial_probs": own}
    )


def _belief(response: ReplyResponse) -> dict[str, float]:
    belief = response.raw["belief"]
    assert isinstance(belief, dict)
    return {str(label): float(p) for label, p in belief.items()}


def _within_three_se(count: int, n: int, p: float) -> None:
    se = math.sqrt(p * (1.0 - p) / n)
    assert abs(count / n - p) <= 3.0 * se, (count, n, p)


# What each kind of reply says, in the plain forms the readouts parse -----------------------


def test_each_kind_of_reply_is_read_by_the_readouts_parser() -> None:
    agent = SimBayesBackend(BIASED)
    turn1 = _facts(1)
    answers = _reply(agent, turn1, "answer", n=5)
    assert all(text in TWO and read_answer(text, TWO) == text for text in answers.texts)
    (stated,) = _reply(agent, turn1, "answer-and-confidence").texts
    read = read_stated_answer(stated, TWO)
    assert stated == f"Answer: {read.label}\nConfidence: {round(100 * read.confidence)}"
    (confidence,) = _reply(agent, turn1, "confidence", proposed="A").texts
    assert confidence.isdigit() and 0.0 <= read_confidence(confidence) <= 1.0
    verdicts = _reply(agent, turn1, "true-or-false", proposed="B", n=20).texts
    assert set(verdicts) <= {"True", "False"}
    assert [read_true_false(text) for text in verdicts] == [text == "True" for text in verdicts]


def test_replies_are_reproducible_from_the_seed() -> None:
    agent = SimBayesBackend(BIASED)
    facts = _later()
    first = _reply(agent, facts, "answer", n=40, seed=5)
    assert _reply(agent, facts, "answer", n=40, seed=5) == first
    assert _reply(agent, facts, "answer", n=40, seed=6).texts != first.texts
    # The belief is the trial's, whatever the request's seed: one turn, one belief.
    assert _belief(_reply(agent, facts, "answer", n=40, seed=6)) == _belief(first)
    assert _belief(_reply(agent, facts, "answer", trial_id="trial-2")) != _belief(first)


# Sampling: behaviour, drawn from the belief `answer` reports --------------------------------


@pytest.mark.parametrize(
    ("labels", "facts"),
    [
        (TWO, _facts(1)),
        (TWO, _later()),
        (FOUR, _facts(1)),
        (FOUR, _later(initial="C", initial_probs={"A": 0.1, "B": 0.2, "C": 0.6, "D": 0.1})),
    ],
    ids=["two-options-turn-1", "two-options-turn-2", "four-options-turn-1", "four-options-turn-2"],
)
def test_sampled_answers_follow_the_probabilities_answer_reports(
    labels: Sequence[str], facts: AdviceFacts
) -> None:
    agent = SimBayesBackend(BIASED)
    trial = f"trial-{facts.stage}-{len(labels)}"
    if facts.stage == 2:
        facts = _as_logprobs_stored(agent, facts, labels)
    _, reported = _answered(agent, facts, labels, trial)
    n = 20_000
    replies = _reply(agent, facts, "answer", labels=labels, n=n, trial_id=trial)
    for label in labels:
        assert _belief(replies)[label] == pytest.approx(reported[label], abs=1e-12)
        _within_three_se(replies.texts.count(label), n, reported[label])


def test_the_first_sample_is_the_answer_answer_gives() -> None:
    # Same trial, same call seed: the first sampled answer is the logprobs readout's answer,
    # so a run under sampling builds its later turns on the same answers as one under logprobs.
    agent = SimBayesBackend(BIASED)
    for k in range(30):
        for facts in (_facts(1), _as_logprobs_stored(agent, _later(initial="B"), TWO)):
            trial = f"trial-{k}"
            chosen, _ = _answered(agent, facts, TWO, trial)
            assert _reply(agent, facts, "answer", n=20, trial_id=trial).texts[0] == chosen


def test_a_later_turn_starts_from_the_true_belief_not_the_readouts_estimate() -> None:
    # Under a text readout the facts carry a frequency or a stated number; the agent's
    # behaviour follows its true turn-1 belief (the item's latent) whatever they say.
    agent = SimBayesBackend(SimBayesParams(tau=3.0, noise=0.3, w_opposite=2.5))
    beliefs = [
        _belief(_reply(agent, _later(initial="B", confidence=c), "answer", n=1))
        for c in (0.05, 0.5, 0.95)
    ]
    assert beliefs[0] == beliefs[1] == beliefs[2]
    p_b = 1.0 / (1.0 + math.exp(-agent._item_latent("item-7")))  # B is correct
    turn2 = agent._stage2(
        _later(initial="B"),
        TWO,
        "B",
        np.array([1.0 - p_b, p_b]),
        np.random.default_rng(_call_seed("trial-1")),
    )
    assert beliefs[0]["B"] == pytest.approx(turn2.probability("B"), abs=1e-15)


# Verbal: a stated confidence, distorted as documented ----------------------------------------


@pytest.mark.parametrize(
    ("probability", "offset", "rounding", "stated"),
    [
        (0.73, 0.0, 10, 70),
        (0.75, 0.0, 10, 80),  # halves round up
        (0.949, 0.0, 10, 90),
        (0.95, 0.0, 10, 100),
        (0.73, 0.0, 5, 75),
        (0.72, 0.0, 5, 70),
        (0.734, 0.0, 1, 73),
        (0.73, 15.0, 10, 90),
        (0.93, 15.0, 10, 100),  # clipped to 100
        (0.08, -20.0, 5, 0),  # clipped to 0
    ],
)
def test_stated_confidence_is_offset_clipped_and_rounded(
    probability: float, offset: float, rounding: int, stated: int
) -> None:
    agent = SimBayesBackend(
        SimBayesParams.model_validate({"verbal_offset": offset, "verbal_rounding": rounding})
    )
    assert agent.stated_confidence(probability) == stated


def test_verbal_replies_state_the_belief_of_the_answer_they_give() -> None:
    agent = SimBayesBackend(
        SimBayesParams(noise=0.3, verbal_offset=10.0, verbal_rounding=5, tau=2.0)
    )
    facts = _later(initial="A")
    replies = _reply(agent, facts, "answer-and-confidence", n=200)
    belief = _belief(replies)
    for text in replies.texts:
        read = read_stated_answer(text, TWO)
        # tau distorts the token logprobs only: the stated number starts from the true belief.
        assert round(100 * read.confidence) == agent.stated_confidence(belief[read.label])
    assert {read_stated_answer(text, TWO).label for text in replies.texts} == set(TWO)


def test_the_two_stage_confidence_states_the_same_turns_belief() -> None:
    # The follow-up question comes with a seed of its own (`readout|confidence`); the belief it
    # states is still the turn's, noise draw included.
    agent = SimBayesBackend(SimBayesParams(noise=1.0, verbal_rounding=1))
    facts = _later(initial="A")
    answered = _reply(agent, facts, "answer")
    (label,) = answered.texts
    asked = _reply(agent, facts, "confidence", proposed=label, seed=seed_from_id("x", "y"))
    assert asked.texts == (str(agent.stated_confidence(_belief(answered)[label])),)


def test_p_true_is_the_frequency_of_true_at_the_agents_probability() -> None:
    agent = SimBayesBackend(BIASED)
    facts = _later(initial="A")
    n = 20_000
    verdicts = _reply(agent, facts, "true-or-false", proposed="A", n=n, seed=99)
    _within_three_se(verdicts.texts.count("True"), n, _belief(verdicts)["A"])


def test_a_question_about_no_option_is_refused() -> None:
    agent = SimBayesBackend(BIASED)
    with pytest.raises(ValueError, match="'E', which is not an option"):
        _reply(agent, _facts(1), "confidence", proposed="E")


@pytest.mark.parametrize(
    "params",
    [{"verbal_rounding": 7}, {"verbal_offset": 101.0}, {"verbal_offset": -100.5}],
)
def test_verbal_params_are_bounded(params: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SimBayesParams.model_validate(params)


# Through the readouts themselves -----------------------------------------------------------


def test_every_readout_reads_the_agent() -> None:
    agent = SimBayesBackend(BIASED)
    turn1 = _choice_request(_facts(1), TWO, "trial-r")
    chosen, reported = _answered(agent, _facts(1), TWO, "trial-r")
    (sampled,) = asyncio.run(SamplingReadout(400).read(agent, [turn1]))
    assert sampled.choice == chosen and sampled.readout is not None
    assert sampled.readout.probs is not None
    _within_three_se(round(400 * sampled.readout.probs["B"]), 400, reported["B"])
    (verbal,) = asyncio.run(VerbalReadout().read(agent, [turn1]))
    assert verbal.choice == chosen and verbal.readout_detail is not None
    assert verbal.readout_detail.stated == agent.stated_confidence(reported[chosen]) / 100
    (two_stage,) = asyncio.run(TwoStageVerbalReadout().read(agent, [turn1]))
    assert two_stage.choice == chosen and two_stage.readout_detail is not None
    assert two_stage.readout_detail.stated == verbal.readout_detail.stated
    (p_true,) = asyncio.run(PTrueReadout(400, logprobs=False).read(agent, [turn1]))
    assert p_true.choice == chosen and p_true.readout_detail is not None
    assert p_true.readout_detail.stated is not None
    _within_three_se(round(400 * p_true.readout_detail.stated), 400, reported[chosen])


@pytest.mark.parametrize("labels", [TWO, FOUR])
def test_ptrue_by_logprobs_reads_the_agents_probability_of_its_own_answer(
    labels: tuple[str, ...],
) -> None:
    """The true-or-false call says what it asks (`ChoiceRequest.asked`): the agent answers
    P(True) of the proposed answer over the question's options, not the question again."""
    agent = SimBayesBackend(SimBayesParams())  # tau 1: reported = true probabilities
    turn1 = _choice_request(_facts(1), labels, "trial-p")
    chosen, reported = _answered(agent, _facts(1), labels, "trial-p")
    (p_true,) = asyncio.run(PTrueReadout(20, logprobs=True).read(agent, [turn1]))
    assert p_true.error is None and p_true.choice == chosen
    assert p_true.readout_detail is not None
    assert p_true.readout_detail.stated == pytest.approx(reported[chosen], abs=1e-12)
    assert p_true.readout is not None and p_true.readout.probs is not None
    assert p_true.readout.probs[chosen] == pytest.approx(reported[chosen], abs=1e-12)


def test_ptrue_by_replies_on_four_options() -> None:
    agent = SimBayesBackend(SimBayesParams())
    turn1 = _choice_request(_facts(1), FOUR, "trial-q")
    chosen, reported = _answered(agent, _facts(1), FOUR, "trial-q")
    (p_true,) = asyncio.run(PTrueReadout(400, logprobs=False).read(agent, [turn1]))
    assert p_true.error is None and p_true.choice == chosen
    assert p_true.readout_detail is not None and p_true.readout_detail.stated is not None
    _within_three_se(round(400 * p_true.readout_detail.stated), 400, reported[chosen])
