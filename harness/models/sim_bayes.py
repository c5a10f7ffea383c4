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
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.models.base import Capabilities, ModelBackend
from harness.readout import readout_from_masses
from harness.trial_ids import seed_from_id
from harness.types import ChoiceRequest, ChoiceResponse, JsonValue

CLIP_LOW = 0.01
CLIP_HIGH = 0.99
"""Accuracies and confidences are clipped to this range before any logit. The analysis clips
the same way (`analysis.logodds`); a test keeps the two in step."""


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
    """Mean latent log-odds of the correct option (1.0: about 70 % correct)."""
    sigma: float = Field(default=1.0, ge=0.0)
    """Spread of the latent log-odds across items."""
    seed: int = 0
    """Seeds the items' latent log-odds (a different population of 'knowledge')."""
    latency_s: float = Field(default=0.0, ge=0.0, le=60.0)
    """Simulated response time per batch (for testing the runner and interruptions)."""


def _clip(p: float) -> float:
    return min(max(p, CLIP_LOW), CLIP_HIGH)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


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
        if request.stage == 1:
            correct = str(situation["correct"])
            wrong = next(label for label in labels if label != correct)
            latent = self._item_latent(str(situation["item_id"]))
            p_correct = _sigmoid(latent)
            choice = correct if rng.random() < p_correct else wrong
            mass = {correct: p_correct, wrong: 1.0 - p_correct}
            raw: dict[str, JsonValue] = {"latent_logodds": latent}
        else:
            initial = str(situation["initial_choice"])
            other = next(label for label in labels if label != initial)
            confidence = situation["initial_confidence"]
            if confidence is None:
                raise ValueError("sim:bayes needs the stage-1 confidence")
            logodds = self._followup_logodds(
                float(confidence),
                display=str(situation["display"]),
                advice=str(situation["advice"]),
                accuracy=float(situation["accuracy"]),
                noise_draw=float(rng.standard_normal()),
            )
            q = _sigmoid(logodds)
            choice = initial if rng.random() < q else other
            mass = {initial: q, other: 1.0 - q}
            raw = {"logodds_initial": logodds}
        ordered = {label: mass[label] for label in labels}
        readout = readout_from_masses(ordered)
        return ChoiceResponse(choice=choice, readout=readout, raw=raw)

    def _item_latent(self, item_id: str) -> float:
        item_rng = np.random.default_rng(seed_from_id(item_id, f"sim-latent|{self.params.seed}"))
        return float(self.params.mu + self.params.sigma * item_rng.standard_normal())

    def _followup_logodds(
        self, confidence: float, *, display: str, advice: str, accuracy: float, noise_draw: float
    ) -> float:
        p = self.params
        evidence = _logit(_clip(accuracy))
        logodds = _logit(_clip(confidence))
        if display == "shown":
            logodds += p.choice_support
        if advice == "same":
            logodds += p.w_same * evidence
        elif advice == "opposite":
            logodds -= p.w_opposite * evidence
        return logodds + p.noise * noise_draw
