"""The simulated agent follows docs/design.md's definition exactly."""

from __future__ import annotations

import asyncio
import json
import math
import tomllib
from pathlib import Path

import pytest

from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.types import ChoiceRequest, Message, Prompt, TurnFacts
from mindshift.paradigms.agent.sim_bayes import (
    CLIP_HIGH,
    CLIP_LOW,
    PROVIDER,
    SimBayesBackend,
    SimBayesParams,
)
from mindshift.paradigms.facts import AdviceFacts

PROMPT = Prompt(messages=(Message("user", "q"),), answer_prefix="My answer is:", labels=("A", "B"))


def _facts(stage: int, facts: dict[str, object]) -> AdviceFacts:
    """The facts of a turn; the item is only what a test does not set (turn 2 ignores it)."""
    return AdviceFacts.model_validate({"stage": stage, "item_id": "i", "correct": "A", **facts})


def _ask(
    agent: SimBayesBackend, stage: int, seed: int, **facts: object
) -> tuple[str, dict[str, float]]:
    request = ChoiceRequest(
        trial_id="t",
        stage=stage,
        prompt=PROMPT,
        temperature=1.0,
        seed=seed,
        facts=_facts(stage, facts),
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
    facts = dict(
        initial_choice="A", initial_confidence=0.7, display="hidden", advice="neutral", accuracy=0.6
    )
    first = _ask(agent, 2, 11, **facts)
    assert _ask(agent, 2, 11, **facts) == first
    assert _ask(agent, 2, 12, **facts)[1] != first[1]


def test_clip_bounds_match_the_analysis() -> None:
    from mindshift.analysis.engines import logodds

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


# K options --------------------------------------------------------------------------------

PROMPT4 = Prompt(
    messages=(Message("user", "q"),), answer_prefix="My answer is:", labels=("A", "B", "C", "D")
)


def _ask4(
    agent: SimBayesBackend, stage: int, seed: int, **facts: object
) -> tuple[str, dict[str, float]]:
    request = ChoiceRequest(
        trial_id="t",
        stage=stage,
        prompt=PROMPT4,
        temperature=1.0,
        seed=seed,
        facts=_facts(stage, facts),
    )
    (response,) = asyncio.run(agent.answer([request]))
    assert response.choice is not None and response.readout is not None
    assert response.readout.probs is not None
    return response.choice, response.readout.probs


def test_k_options_stage_one_spreads_the_rest_evenly_over_the_foils() -> None:
    agent = SimBayesBackend(SimBayesParams(mu=0.3, sigma=0.0))
    counts = {label: 0 for label in "ABCD"}
    for seed in range(4000):
        choice, probs = _ask4(agent, 1, seed, item_id="x", correct="C")
        counts[choice] += 1
    p_correct = 1 / (1 + math.exp(-0.3))
    assert probs["C"] == pytest.approx(p_correct)
    for foil in "ABD":
        assert probs[foil] == pytest.approx((1 - p_correct) / 3)
        assert counts[foil] / 4000 == pytest.approx((1 - p_correct) / 3, abs=0.025)
    assert counts["C"] / 4000 == pytest.approx(p_correct, abs=0.025)


INITIAL4 = {"A": 0.5, "B": 0.2, "C": 0.2, "D": 0.1}


def _posterior4(advised: int, accuracy: float) -> list[float]:
    p = [INITIAL4[label] for label in "ABCD"]
    likelihood = [(1 - accuracy) / 3] * 4
    likelihood[advised] = accuracy
    total = sum(x * y for x, y in zip(p, likelihood, strict=True))
    return [x * y / total for x, y in zip(p, likelihood, strict=True)]


@pytest.mark.parametrize(
    ("advice", "advised"), [("same", "A"), ("opposite", "B"), ("opposite", "D")]
)
def test_ideal_k_option_agent_reports_the_full_bayes_posterior(advice: str, advised: str) -> None:
    agent = SimBayesBackend(SimBayesParams())
    _, probs = _ask4(
        agent,
        2,
        5,
        initial_choice="A",
        initial_confidence=0.5,
        initial_probs=INITIAL4,
        display="hidden",
        advice=advice,
        accuracy=0.8,
        advised=advised,
    )
    expected = _posterior4("ABCD".index(advised), 0.8)
    assert [probs[label] for label in "ABCD"] == pytest.approx(expected, abs=1e-12)


def test_k_option_weights_scale_the_bayes_log_odds_shift() -> None:
    from mindshift.analysis.engines.bayes import bayes_shift

    agent = SimBayesBackend(
        SimBayesParams(choice_support=0.8, w_same=1.5, w_opposite=2.5, noise=0.0)
    )
    for advice, advised, weight in (("same", "A", 1.5), ("opposite", "B", 2.5)):
        _, probs = _ask4(
            agent,
            2,
            5,
            initial_choice="A",
            initial_confidence=0.5,
            initial_probs=INITIAL4,
            display="shown",
            advice=advice,
            accuracy=0.8,
            advised=advised,
        )
        # Delta = logit(post) - logit(c) of the K-option update (share w = 0.2 / 0.5).
        delta = float(bayes_shift(0.8, advice, 4, 0.2 / 0.5 if advice == "opposite" else 1.0))
        assert _logit(probs["A"]) == pytest.approx(0.8 + weight * delta)
        # The rest keeps the ideal observer's proportions among the alternatives.
        rest = _posterior4("ABCD".index(advised), 0.8)[1:]
        shares = [probs[label] / (1 - probs["A"]) for label in "BCD"]
        assert shares == pytest.approx([x / sum(rest) for x in rest])


def test_the_agents_shift_is_the_analysis_bayes_shift() -> None:
    # The agent may not import the analysis: the two definitions are kept in step here.
    import numpy as np

    from mindshift.analysis.engines.bayes import advised_share, bayes_shift, sequence_shifts
    from mindshift.paradigms.agent import sim_bayes

    p = np.array([0.45, 0.3, 0.15, 0.1])
    for advice, advised, accuracy in (("same", 0, 0.6), ("opposite", 1, 0.9), ("opposite", 3, 1.0)):
        ours = sim_bayes.bayes_shift(p, 0, advice, accuracy, advised)
        theirs = bayes_shift(accuracy, advice, 4, advised_share(p[0], p[advised], 4))
        assert ours == pytest.approx(float(theirs), abs=1e-12)
    sequence = [("opposite", 0.7, 1), ("same", 0.9, 0), ("opposite", 0.8, 3)]
    ours_seq = sim_bayes.sequence_shifts(p, 0, sequence)
    theirs_seq = sequence_shifts(
        float(p[0]), "A", [(k, a, "ABCD"[r], float(p[r])) for k, a, r in sequence], 4
    )
    assert ours_seq == pytest.approx(theirs_seq, abs=1e-12)


def test_two_options_through_the_sequence_path_are_bit_identical() -> None:
    # One advisor given as a sequence takes the general path; it must equal the original
    # two-option arithmetic exactly.
    agent = SimBayesBackend(
        SimBayesParams(choice_support=0.8, w_same=1.5, w_opposite=2.5, noise=0.4, tau=1.7)
    )
    for advice in ("same", "opposite", "neutral"):
        base = dict(initial_choice="B", initial_confidence=0.73, display="shown", accuracy=0.8)
        advised = {"same": "B", "opposite": "A", "neutral": None}[advice]
        single = _ask(agent, 2, 9, advice=advice, advised=advised, **base)
        sequence = _ask(
            agent, 2, 9, advisors=[{"advice": advice, "accuracy": 0.8, "advised": advised}], **base
        )
        assert single == sequence


def test_a_sequence_adds_weighted_log_odds() -> None:
    agent = SimBayesBackend(SimBayesParams(w_same=1.5, w_opposite=2.5))
    _, probs = _ask(
        agent,
        2,
        3,
        initial_choice="A",
        initial_confidence=0.8,
        display="hidden",
        advisors=[
            {"advice": "same", "accuracy": 0.7, "advised": "A"},
            {"advice": "opposite", "accuracy": 0.9, "advised": "B"},
            {"advice": "neutral", "accuracy": 0.6, "advised": None},
        ],
    )
    assert _logit(probs["A"]) == pytest.approx(_logit(0.8) + 1.5 * _logit(0.7) - 2.5 * _logit(0.9))


def test_answer_wrong_frames_the_update_on_the_displayed_answer() -> None:
    # The agent chose B (0.8) but is shown A as its own: it updates its belief in A (0.2),
    # with choice support, since A is presented as its own answer.
    agent = SimBayesBackend(SimBayesParams(choice_support=0.5))
    _, probs = _ask(
        agent,
        2,
        3,
        initial_choice="B",
        initial_confidence=0.8,
        initial_probs={"A": 0.2, "B": 0.8},
        display="answer-wrong",
        displayed="A",
        advice="same",
        accuracy=0.7,
        advised="A",
    )
    assert _logit(probs["A"]) == pytest.approx(_logit(0.2) + 0.5 + _logit(0.7))


def test_beta_noise_draws_q_around_its_mean_with_the_set_precision() -> None:
    from mindshift.paradigms.agent.sim_bayes import SimBayesBackend as Agent
    from mindshift.paradigms.agent.sim_bayes import SimBayesParams as Params

    agent = Agent(Params(beta_kappa=40.0))
    facts = dict(
        initial_choice="A", initial_confidence=0.8, display="hidden", advice="neutral", accuracy=0.6
    )
    draws = [_ask(agent, 2, seed, **facts)[1]["A"] for seed in range(3000)]
    mean = sum(draws) / len(draws)
    variance = sum((d - mean) ** 2 for d in draws) / len(draws)
    assert mean == pytest.approx(0.8, abs=0.01)
    # Beta(m k, (1 - m) k) has variance m (1 - m) / (k + 1).
    assert variance == pytest.approx(0.8 * 0.2 / 41, rel=0.1)


# The stored runs and the provider -----------------------------------------------------------

OLD_RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"


@pytest.mark.parametrize("name", ["change-of-mind", "are-you-sure", "multi-advice"])
def test_the_agent_answers_every_stored_call_of_an_old_run_exactly(name: str) -> None:
    # The runs were made by the agent when it read an untyped situation dict; reading the
    # typed facts parsed from that JSON must give every number back bit for bit.
    config = tomllib.loads((OLD_RUNS / f"{name}.toml").read_text(encoding="utf-8"))
    (model,) = config["models"]
    agent = SimBayesBackend(SimBayesParams.model_validate(model["params"]))
    lines = (OLD_RUNS / name / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    requests = [
        ChoiceRequest(
            trial_id=record["trial_id"],
            stage=record["stage"],
            prompt=Prompt(
                tuple(Message(m["role"], m["content"]) for m in record["request"]["messages"]),
                record["request"]["answer_prefix"],
                tuple(record["request"]["labels"]),
            ),
            temperature=record["request"]["temperature"],
            seed=record["request"]["seed"],
            facts=AdviceFacts.model_validate(record["request"]["situation"]),
        )
        for record in records
    ]
    responses = asyncio.run(agent.answer(requests))
    for record, response in zip(records, responses, strict=True):
        assert response.choice == record["choice"], record["trial_id"]
        assert response.raw == record["response"], record["trial_id"]
        assert response.readout is not None
        assert response.readout.to_json() == record["readout"], record["trial_id"]


class _OtherFacts(TurnFacts):
    round: int


@pytest.mark.parametrize("facts", [None, _OtherFacts(round=1)])
def test_a_turn_without_advice_facts_is_refused_in_one_line(facts: TurnFacts | None) -> None:
    request = ChoiceRequest(
        trial_id="t", stage=1, prompt=PROMPT, temperature=1.0, seed=0, facts=facts
    )
    with pytest.raises(UserError, match="advice protocols only") as raised:
        asyncio.run(SimBayesBackend(SimBayesParams()).answer([request]))
    assert "\n" not in str(raised.value)


def _entry(**keys: object) -> ModelSection:
    return ModelSection.model_validate({"id": "agent", "spec": "sim:bayes", **keys})


def test_the_provider_checks_an_entry_and_builds_the_agent() -> None:
    assert PROVIDER.name == "sim" and PROVIDER.capabilities == SimBayesBackend.capabilities
    entry = _entry(params={"w_opposite": 2.5, "noise": 0.3})
    PROVIDER.validate(entry)
    backend = PROVIDER.create(entry)
    assert isinstance(backend, SimBayesBackend)
    assert backend.params == SimBayesParams(w_opposite=2.5, noise=0.3)
    with pytest.raises(ConfigError, match=r"model 'agent' params: unknown key 'w_oposite'"):
        PROVIDER.validate(_entry(params={"w_oposite": 2.5}))
    with pytest.raises(ConfigError, match="'noise'"):
        PROVIDER.validate(_entry(params={"noise": -1.0}))
    with pytest.raises(ConfigError, match="unknown simulated agent 'sim:frequentist'"):
        PROVIDER.validate(_entry(spec="sim:frequentist"))
