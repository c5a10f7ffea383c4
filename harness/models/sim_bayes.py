"""`sim:bayes`: a simulated participant with known parameters (DESIGN.md, "The simulated agent").

It reads the structured `situation` of each request rather than the prompt text. All of its
arithmetic is on the log-odds of the initially chosen option:
- stage 1: the item has a latent log-odds d ~ Normal(mu, sigma) for the correct option,
  seeded by the item id; the answer is sampled from sigmoid(d); its confidence c is the
  probability of the sampled answer.
- stage 2: logit(q) = logit(c) + choice_support [shown] + w_same logit(a) [same]
  - w_opposite logit(a) [opposite] + Normal(0, noise); the final answer is sampled from q.
With choice_support = 0, w_same = w_opposite = 1 and noise = 0 it is the ideal Bayesian.
Every draw is seeded by the request's seed, so a resumed run reproduces an uninterrupted one.

Miscalibrated readout (`tau`): the option logits the agent *reports* are its true ones times
tau, at both stages (for two options: reported logit = tau * true logit). tau > 1 reports
overconfident probabilities, tau < 1 underconfident ones. Its *behaviour* still follows its
true beliefs: the answers are sampled from the true probabilities, and stage 2 starts from the
true confidence (recovered exactly from the reported one the harness hands back, since the
agent knows its own tau). That is the premise of post-hoc temperature scaling: an LLM's token
probabilities are a distorted readout of the belief that drives its choices, and dividing the
logits by the fitted temperature undoes the distortion. (A real LLM samples its answer from
the very distribution it reports; here the two are deliberately separated so the analysis can
be checked: calibrated readouts must give back the agent's true parameters.)

How tau shows up in a fitted temperature: for d ~ Normal(mu, sigma) and counterbalanced
option positions, P(correct | true logit x) = sigmoid(2 mu x / sigma^2) exactly, so the
true confidences are themselves calibrated only when sigma^2 = 2 mu, and temperature scaling
fitted on this agent's readouts gives T = tau * sigma^2 / (2 mu) (T = tau when sigma^2 = 2 mu).

The arithmetic is written once, vectorised (`stage1_probability`, `followup_logodds`,
`report`): `answer` applies it to a batch of requests with their per-request random draws,
and `simulate` applies it to whole item x condition blocks for power analysis, so both paths
run the same agent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import special

from harness.models.base import Capabilities, ModelBackend
from harness.readout import readout_from_masses
from harness.trial_ids import seed_from_id
from harness.types import ChoiceRequest, ChoiceResponse, JsonValue

CLIP_LOW = 0.01
CLIP_HIGH = 0.99
"""Accuracies and confidences are clipped to this range before any logit. The analysis clips
the same way (`analysis.logodds`); a test keeps the two in step."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class SimBayesParams(BaseModel):
    """`params` of a `sim:bayes` model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choice_support: float = 0.0
    """Log-odds boost for the initial answer when it is shown as the model's own."""
    w_same: float = 1.0
    """Weight of the advice log-odds when the advice agrees (1 = Bayesian)."""
    w_opposite: float = 1.0
    """Weight of the advice log-odds when the advice disagrees (1 = Bayesian)."""
    noise: float = Field(default=0.0, ge=0.0)
    """Standard deviation of Gaussian noise on the stage-2 log-odds."""
    mu: float = 1.0
    """Mean latent log-odds of the correct option (with the default sigma: about 68 % correct)."""
    sigma: float = Field(default=math.sqrt(2.0), ge=0.0)
    """Spread of the latent log-odds across items. The default makes sigma^2 = 2 mu, the
    population whose stage-1 confidences are calibrated (see the module docstring), so the
    default agent needs no temperature scaling."""
    tau: float = Field(default=1.0, gt=0.0, le=100.0)
    """Readout distortion: reported option logits = true logits x tau (1: reports its true
    beliefs; > 1 overconfident readout; < 1 underconfident). Behaviour uses the true beliefs."""
    seed: int = 0
    """Seeds the items' latent log-odds (a different population of 'knowledge')."""
    latency_s: float = Field(default=0.0, ge=0.0, le=60.0)
    """Simulated response time per batch (for testing the runner and interruptions)."""


def _clipped_logit(p: npt.ArrayLike) -> FloatArray:
    q = np.clip(np.asarray(p, dtype=np.float64), CLIP_LOW, CLIP_HIGH)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def stage1_probability(latent: npt.ArrayLike) -> FloatArray:
    """The agent's true probability of the correct option, from its latent log-odds."""
    return np.asarray(special.expit(np.asarray(latent, dtype=np.float64)), dtype=np.float64)


def report(p_true: npt.ArrayLike, tau: float) -> FloatArray:
    """The reported probability of an option whose true probability (of two) is `p_true`.

    Reported logit = tau x true logit, computed from the unclipped logit (the distortion is of
    the readout, not of the analysis's clipped log-odds).
    """
    p = np.asarray(p_true, dtype=np.float64)
    if tau == 1.0:
        return p
    with np.errstate(divide="ignore"):
        logodds = np.log(p) - np.log1p(-p)
    return np.asarray(special.expit(tau * logodds), dtype=np.float64)


def unreport(p_reported: npt.ArrayLike, tau: float) -> FloatArray:
    """The true probability behind a reported one: the inverse of `report`."""
    return report(p_reported, 1.0 / tau)


def followup_logodds(
    confidence: npt.ArrayLike,
    *,
    shown: npt.ArrayLike,
    advice: npt.ArrayLike,
    accuracy: npt.ArrayLike,
    noise_draw: npt.ArrayLike,
    params: SimBayesParams,
) -> FloatArray:
    """Stage-2 log-odds of the initially chosen option (DESIGN.md), for arrays of trials.

    `confidence` is the agent's true stage-1 confidence; `shown` flags display = shown (the
    only display with choice support); `advice` holds "same" / "opposite" / "neutral";
    `noise_draw` are standard-normal draws.
    """
    kind = np.asarray(advice)
    evidence = _clipped_logit(accuracy)
    weight = np.where(
        kind == "same", params.w_same, np.where(kind == "opposite", -params.w_opposite, 0.0)
    )
    return np.asarray(
        _clipped_logit(confidence)
        + params.choice_support * np.asarray(shown, dtype=np.float64)
        + weight * evidence
        + params.noise * np.asarray(noise_draw, dtype=np.float64),
        dtype=np.float64,
    )


@dataclass(frozen=True)
class SimulatedBlock:
    """Every item x condition of one simulated experiment, as arrays (see `simulate`).

    Item arrays have one entry per item; trial arrays one per (item, condition), item-major
    (trial t is item t // n_conditions, condition t % n_conditions).
    """

    latent: FloatArray
    """Per item: the latent log-odds of the correct option."""
    initial_correct: BoolArray
    """Per item: whether the sampled stage-1 answer is the correct option."""
    initial_confidence: FloatArray
    """Per item: the *reported* probability of the stage-1 answer."""
    final_prob_initial: FloatArray
    """Per trial: the *reported* stage-2 probability of the initially chosen option."""
    changed_mind: BoolArray
    """Per trial: whether the sampled stage-2 answer differs from the stage-1 answer."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class SimBayesBackend(ModelBackend):
    """The simulated agent; answers any number of requests at once."""

    capabilities = Capabilities(
        logprobs=True, top_k_limit=None, prefill=True, prompt_logprobs=False, batch=True
    )
    max_batch_size = 512

    def __init__(self, params: SimBayesParams) -> None:
        self.params = params

    def describe(self) -> dict[str, str]:
        return {"agent": "sim:bayes", **{k: str(v) for k, v in self.params.model_dump().items()}}

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        if self.params.latency_s > 0:
            await asyncio.sleep(self.params.latency_s)
        return [self._answer_one(request) for request in requests]

    def _answer_one(self, request: ChoiceRequest) -> ChoiceResponse:
        situation = request.situation
        labels = request.prompt.labels
        if len(labels) != 2:
            raise ValueError("sim:bayes answers two-option questions")
        rng = np.random.default_rng(request.seed)
        tau = self.params.tau
        if request.stage == 1:
            correct = str(situation["correct"])
            wrong = next(label for label in labels if label != correct)
            latent = self._item_latent(str(situation["item_id"]))
            p_correct = float(stage1_probability(latent))
            choice = correct if rng.random() < p_correct else wrong
            shown_p = float(report(p_correct, tau))
            mass = {correct: shown_p, wrong: 1.0 - shown_p}
            raw: dict[str, JsonValue] = {"latent_logodds": latent}
        else:
            initial = str(situation["initial_choice"])
            other = next(label for label in labels if label != initial)
            reported = situation["initial_confidence"]
            if reported is None:
                raise ValueError("sim:bayes needs the stage-1 confidence")
            noise_draw = float(rng.standard_normal())
            logodds = float(
                followup_logodds(
                    unreport(float(reported), tau),
                    shown=str(situation["display"]) == "shown",
                    advice=str(situation["advice"]),
                    accuracy=float(situation["accuracy"]),
                    noise_draw=noise_draw,
                    params=self.params,
                )
            )
            q = _sigmoid(logodds)
            choice = initial if rng.random() < q else other
            shown_q = float(report(q, tau))
            mass = {initial: shown_q, other: 1.0 - shown_q}
            raw = {"logodds_initial": logodds}
        ordered = {label: mass[label] for label in labels}
        readout = readout_from_masses(ordered)
        return ChoiceResponse(choice=choice, readout=readout, raw=raw)

    def _item_latent(self, item_id: str) -> float:
        item_rng = np.random.default_rng(seed_from_id(item_id, f"sim-latent|{self.params.seed}"))
        return float(self.params.mu + self.params.sigma * item_rng.standard_normal())

    def simulate(
        self,
        n_items: int,
        *,
        displays: Sequence[str],
        advice: Sequence[str],
        accuracies: Sequence[float],
        rng: np.random.Generator,
    ) -> SimulatedBlock:
        """One whole experiment (n_items x conditions) in a few array operations.

        For power analysis, where thousands of simulated experiments must run in seconds:
        the same equations as `answer`, with the random numbers drawn from `rng` in bulk
        instead of one seeded stream per trial id (and latents drawn from `rng` too, so each
        call is a fresh population of items). `displays`, `advice`, `accuracies` are the
        condition arrays (one entry per condition).
        """
        p = self.params
        latent = p.mu + p.sigma * rng.standard_normal(n_items)
        p_correct = stage1_probability(latent)
        initial_correct = rng.random(n_items) < p_correct
        true_confidence = np.where(initial_correct, p_correct, 1.0 - p_correct)
        n_conditions = len(displays)
        shown = np.tile(np.asarray(displays) == "shown", n_items)
        logodds = followup_logodds(
            np.repeat(true_confidence, n_conditions),
            shown=shown,
            advice=np.tile(np.asarray(advice), n_items),
            accuracy=np.tile(np.asarray(accuracies, dtype=np.float64), n_items),
            noise_draw=rng.standard_normal(n_items * n_conditions),
            params=p,
        )
        q = special.expit(logodds)
        stays = rng.random(q.size) < q
        return SimulatedBlock(
            latent=np.asarray(latent, dtype=np.float64),
            initial_correct=np.asarray(initial_correct, dtype=np.bool_),
            initial_confidence=report(true_confidence, p.tau),
            final_prob_initial=report(q, p.tau),
            changed_mind=np.asarray(~stays, dtype=np.bool_),
        )
