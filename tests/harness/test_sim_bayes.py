"""The simulated agent follows DESIGN.md's definition exactly."""

from __future__ import annotations

import asyncio
import math

import pytest

from harness.models.sim_bayes import CLIP_HIGH, CLIP_LOW, SimBayesBackend, SimBayesParams
from harness.types import ChoiceRequest, Message, Prompt

PROMPT = Prompt(messages=(Message("user", "q"),), answer_prefix="My answer is:", labels=("A", "B"))


def _ask(
    agent: SimBayesBackend, stage: int, seed: int, **situation: object
) -> tuple[str, dict[str, float]]:
    request = ChoiceRequest(
        trial_id="t", stage=stage, prompt=PROMPT, temperature=1.0, seed=seed, situation=situation
    )
    (response,) = asyncio.run(agent.answer([request]))
    assert (
        response.choice is not None
        and response.readout is not None
        and response.readout.probs is not None
    )
    return response.choice, response.readout.probs


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_stage_one_confidence_is_the_probability_of_the_sampled_answer() -> None:
    agent = SimBayesBackend(SimBayesParams(mu=1.0, sigma=1.0))
    choices = set()
    for seed in range(40):
        choice, probs = _ask(agent, 1, seed, item_id="item-1", correct="B")
        choices.add(choice)
        assert sum(probs.values()) == pytest.approx(1.0)
    # Same item: same latent, so the same probabilities every time; both answers get sampled.
    assert choices == {"A", "B"}
    latent = agent._item_latent("item-1")
    assert probs["B"] == pytest.approx(1 / (1 + math.exp(-latent)))


@pytest.mark.parametrize(
    ("display", "advice", "expected_shift"),
    [
        ("hidden", "neutral", 0.0),
        ("shown", "neutral", 0.8),
        ("other", "neutral", 0.0),
        ("hidden", "same", 1.5 * _logit(0.7)),
        ("shown", "opposite", 0.8 - 2.5 * _logit(0.7)),
    ],
)
def test_stage_two_log_odds_follow_the_definition(
    display: str, advice: str, expected_shift: float
) -> None:
    agent = SimBayesBackend(
        SimBayesParams(choice_support=0.8, w_same=1.5, w_opposite=2.5, noise=0.0)
    )
    _, probs = _ask(
        agent,
        2,
        7,
        initial_choice="A",
        initial_confidence=0.8,
        display=display,
        advice=advice,
        accuracy=0.7,
    )
    assert _logit(probs["A"]) == pytest.approx(_logit(0.8) + expected_shift)


def test_ideal_agent_is_the_bayesian_posterior_with_clipping() -> None:
    agent = SimBayesBackend(SimBayesParams())
    _, probs = _ask(
        agent,
        2,
        1,
        initial_choice="B",
        initial_confidence=0.8,
        display="shown",
        advice="same",
        accuracy=0.7,
    )
    assert probs["B"] == pytest.approx(0.8 * 0.7 / (0.8 * 0.7 + 0.2 * 0.3))  # 0.903
    _, probs = _ask(
        agent,
        2,
        1,
        initial_choice="B",
        initial_confidence=0.8,
        display="hidden",
        advice="opposite",
        accuracy=0.7,
    )
    assert probs["B"] == pytest.approx(0.8 * 0.3 / (0.8 * 0.3 + 0.2 * 0.7))  # 0.632
    _, probs = _ask(
        agent,
        2,
        1,
        initial_choice="B",
        initial_confidence=0.999,
        display="hidden",
        advice="same",
        accuracy=1.0,
    )
    assert _logit(probs["B"]) == pytest.approx(_logit(CLIP_HIGH) * 2)


def test_noise_is_seeded_per_call() -> None:
    agent = SimBayesBackend(SimBayesParams(noise=0.5))
    situation = dict(
        initial_choice="A", initial_confidence=0.7, display="hidden", advice="neutral", accuracy=0.6
    )
    first = _ask(agent, 2, 11, **situation)
    assert _ask(agent, 2, 11, **situation) == first
    assert _ask(agent, 2, 12, **situation)[1] != first[1]


def test_clip_bounds_match_the_analysis() -> None:
    from analysis import logodds

    assert (CLIP_LOW, CLIP_HIGH) == (logodds.CLIP_LOW, logodds.CLIP_HIGH)


def test_tau_distorts_the_readout_not_the_behaviour() -> None:
    agent = SimBayesBackend(SimBayesParams(tau=2.0))
    latent = agent._item_latent("item-1")
    _, probs = _ask(agent, 1, 0, item_id="item-1", correct="A")
    # Reported logit = 2 x true logit.
    assert _logit(probs["A"]) == pytest.approx(2.0 * latent)
    # Stage 2 starts from the true confidence behind the reported 0.8 (logit halved).
    reported = 0.8
    agent = SimBayesBackend(SimBayesParams(tau=2.0, choice_support=0.5))
    _, probs = _ask(
        agent,
        2,
        3,
        initial_choice="B",
        initial_confidence=reported,
        display="shown",
        advice="neutral",
        accuracy=0.7,
    )
    true_logit = _logit(reported) / 2.0
    assert _logit(probs["B"]) == pytest.approx(2.0 * (true_logit + 0.5))


def test_answers_are_sampled_from_the_true_probabilities() -> None:
    # tau = 5 would make the reported confidence extreme; choices still follow sigmoid(d).
    agent = SimBayesBackend(SimBayesParams(tau=5.0, mu=0.4, sigma=0.0))
    chosen = [_ask(agent, 1, seed, item_id="x", correct="A")[0] for seed in range(3000)]
    share = chosen.count("A") / len(chosen)
    assert share == pytest.approx(1 / (1 + math.exp(-0.4)), abs=0.03)


def test_bulk_simulation_runs_the_same_agent() -> None:
    import numpy as np

    params = SimBayesParams(choice_support=0.8, w_same=1.0, w_opposite=2.5, noise=0.0, tau=1.5)
    agent = SimBayesBackend(params)
    block = agent.simulate(
        3,
        displays=["shown", "hidden"],
        advice=["opposite", "same"],
        accuracies=[0.7, 0.9],
        rng=np.random.default_rng(0),
    )
    assert block.final_prob_initial.shape == (6,) and block.initial_confidence.shape == (3,)
    # Per trial, the reported stage-2 probability is what `answer` computes from the reported
    # stage-1 confidence of its item.
    for t in range(6):
        item, condition = divmod(t, 2)
        display, advice, accuracy = [("shown", "opposite", 0.7), ("hidden", "same", 0.9)][condition]
        _, probs = _ask(
            agent,
            2,
            t,
            initial_choice="A",
            initial_confidence=float(block.initial_confidence[item]),
            display=display,
            advice=advice,
            accuracy=accuracy,
        )
        assert probs["A"] == pytest.approx(block.final_prob_initial[t])
