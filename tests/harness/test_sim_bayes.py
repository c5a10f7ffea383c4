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
