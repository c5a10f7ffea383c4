"""`sim:bayes`: a simulated participant with known parameters (docs/design.md, "The simulated
agent").

It answers the advice protocols (`change-of-mind`, `are-you-sure`, `multi-advice`): it reads
the typed facts their prompts carry (`paradigms.facts.AdviceFacts`, the request's `facts`)
rather than the prompt text, and refuses, in one line, a request whose turn states no such
facts. All of its arithmetic is on the log-odds of the initially chosen option:
- stage 1: the item has a latent log-odds d ~ Normal(mu, sigma) for the correct option,
  seeded by the item id; the answer is sampled from sigmoid(d); its confidence c is the
  probability of the sampled answer.
- stage 2: logit(q) = logit(c) + choice_support [shown] + w_same logit(a) [same]
  - w_opposite logit(a) [opposite] + Normal(0, noise); the final answer is sampled from q.
With choice_support = 0, w_same = w_opposite = 1 and noise = 0 it is the ideal Bayesian.
Every draw is seeded by the request's seed, so a resumed run reproduces an uninterrupted one.

K options (the two-option agent above is the case K = 2, computed by the very same code path,
bit for bit):
- stage 1: d is the log-odds of the correct option against all the others together:
  p(correct) = sigmoid(d), and the rest, 1 - sigmoid(d), is spread evenly over the K - 1
  wrong options (the agent knows something or nothing; it has no favourite foil).
- stage 2: logit(q) = logit(c) + choice_support [own answer shown] + w_same Delta [same]
  + w_opposite Delta [opposite] + Normal(0, noise), where Delta is the ideal observer's
  log-odds shift of the option i the trial is framed on (`analysis.engines.bayes`: an advisor
  of accuracy a recommends r; it is wrong with probability 1 - a and then picks uniformly
  among the K - 1 other options): Delta = logit(a) + log(K - 1) for same advice, and
  log((1 - a)/(K - 1)) - log(w a + (1 - w)(1 - a)/(K - 1)) for opposite advice, with
  w = p_r / (1 - p_i). For K = 2 Delta = +-logit(a), so the weights keep their meaning.
- the remaining 1 - q goes to the other options in proportion to the ideal observer's
  posterior among them, p_j L_j (L_r = a for the advised option, (1 - a)/(K - 1) otherwise).
  Under same or neutral advice every alternative has the same likelihood, so this is in
  proportion to their stage-1 probabilities; under opposite advice the advised option gains
  over the other alternatives exactly as the evidence says, and the agent's biases act only
  on how much it keeps for option i. The ideal agent's whole stage-2 distribution is then the
  Bayes posterior.
- a sequence of advisors (the facts' `advisors`, the `multi-advice` protocol) adds one
  weighted term per advisor, w_type(k) Delta_k, with Delta_k the ideal observer's shift after
  the advisors before it; for K = 2 that is sum_k +-w logit(a_k), the Bayes log-odds sum.
- the option i is the stage-1 answer, or the answer displayed as the agent's own
  (the facts' `displayed`, e.g. the `answer-wrong` control); choice support applies to
  every display that presents an answer as the agent's own: shown, answer-wrong, in-context.

Miscalibrated readout (`tau`): the option logits the agent *reports* are its true ones times
tau, at both stages (for two options: reported logit = tau * true logit; for K options the
reported distribution is softmax(tau log p)). tau > 1 reports
overconfident probabilities, tau < 1 underconfident ones. Its *behaviour* still follows its
true beliefs: the answers are sampled from the true probabilities, and stage 2 starts from the
true confidence (recovered exactly from the reported one the harness hands back, since the
agent knows its own tau). That is the premise of post-hoc temperature scaling: an LLM's token
probabilities are a distorted readout of the belief that drives its choices, and dividing the
logits by the fitted temperature undoes the distortion. (A real LLM samples its answer from
the very distribution it reports; here the two are deliberately separated so the analysis can
be checked: calibrated readouts must give back the agent's true parameters.)

Readouts without logprobs (`reply`: `harness.readouts`' sampling, verbal, verbal-2stage and
ptrue ask for free text, and the request's `asked` says what is asked). The turn's belief is
the one `answer` computes (`TurnBelief`, the same code), its random terms drawn from the
trial's call-seed stream (`CALL_SEED_SALT`), so every request of one turn, whatever its own
seed, sees one belief, and it is the belief `answer` holds for that trial. What each reply
says of it:
- `answer` (sampling; the first step of verbal-2stage and ptrue): n labels ("B") drawn from
  the true belief. Sampling is behaviour, so it carries no distortion, only binomial noise.
- `answer-and-confidence` (verbal): a drawn label and its stated confidence, on two lines
  ("Answer: B", "Confidence: 80").
- `confidence` (verbal-2stage): the stated confidence of the `proposed` answer ("80").
- `true-or-false` (ptrue): n replies, "True" with the true probability of `proposed`, else
  "False". P(True) is asked about the belief, not stated, so it is not distorted either.
The stated confidence is the verbal readout's documented distortion: 100 x the true
probability, plus `verbal_offset` points (overconfidence), clipped to [0, 100], rounded half
up to a multiple of `verbal_rounding` (1, 5 or 10). `tau` is the token readout's distortion and
does not touch any text. A later turn read through text starts from the agent's true turn-1
belief, recomputed from the item's latent: the turn-1 numbers the facts carry are then the
readout's estimate (a frequency, a stated number), and behaviour follows beliefs, not reports.

How tau shows up in a fitted temperature: for d ~ Normal(mu, sigma) and counterbalanced
option positions, P(correct | true logit x) = sigmoid(2 mu x / sigma^2) exactly, so the
true confidences are themselves calibrated only when sigma^2 = 2 mu, and temperature scaling
fitted on this agent's readouts gives T = tau * sigma^2 / (2 mu) (T = tau when sigma^2 = 2 mu).

The arithmetic is written once, vectorised (`stage1_probability`, `followup_logodds`,
`report`, `TurnBelief`): `answer` and `reply` apply it to a batch of requests with their
per-request random draws,
and `simulate` applies it to whole item x condition blocks for power analysis, so both paths
run the same agent.

It lives with the protocols, not the engine, because it speaks their language (displays,
advice, accuracies); mindshift finds it as the provider `PROVIDER` of the `sim:` specs,
registered under the entry-point group `mindshift.backends`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import special

from mindshift.harness.config import ModelSection, describe_validation_error
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models.base import Capabilities, ModelBackend
from mindshift.harness.models.provider import RETRY_KEYS, NoSettings, Provider, entry_settings
from mindshift.harness.readout import readout_from_masses
from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    ReplyRequest,
    ReplyResponse,
    TurnFacts,
)
from mindshift.paradigms.facts import OWN_DISPLAYS, AdviceFacts

CLIP_LOW = 0.01
CLIP_HIGH = 0.99
"""Accuracies and confidences are clipped to this range before any logit. The analysis clips
the same way (`analysis.engines.logodds`); a test keeps the two in step."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


LOGODDS_BOUND = 100.0
"""Largest magnitude of a log-odds parameter (and of noise and sigma). A log-odds of 100 is a
probability within 1e-43 of 0 or 1, far past anything an experiment means; the bound keeps
every number the agent computes finite, so each call's record can be stored (JSON has no
infinity), and refuses a typo such as 1e308 when the config is read, not mid-run."""


class SimBayesParams(BaseModel):
    """`params` of a `sim:bayes` model (bounded: see `LOGODDS_BOUND`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choice_support: float = Field(default=0.0, ge=-LOGODDS_BOUND, le=LOGODDS_BOUND)
    """Log-odds boost for the initial answer when it is shown as the model's own."""
    w_same: float = Field(default=1.0, ge=-LOGODDS_BOUND, le=LOGODDS_BOUND)
    """Weight of the advice log-odds when the advice agrees (1 = Bayesian)."""
    w_opposite: float = Field(default=1.0, ge=-LOGODDS_BOUND, le=LOGODDS_BOUND)
    """Weight of the advice log-odds when the advice disagrees (1 = Bayesian)."""
    noise: float = Field(default=0.0, ge=0.0, le=LOGODDS_BOUND)
    """Standard deviation of Gaussian noise on the stage-2 log-odds."""
    beta_kappa: float | None = Field(default=None, gt=0.0, le=1e6)
    """When set, the stage-2 confidence q is redrawn as Beta(q kappa, (1 - q) kappa): noise of
    the kind the Bayesian beta regression assumes (its recovery checks need it; the Gaussian
    log-odds noise biases a beta regression's weights by a few per cent)."""
    mu: float = Field(default=1.0, ge=-LOGODDS_BOUND, le=LOGODDS_BOUND)
    """Mean latent log-odds of the correct option (with the default sigma: about 68 % correct)."""
    sigma: float = Field(default=math.sqrt(2.0), ge=0.0, le=LOGODDS_BOUND)
    """Spread of the latent log-odds across items. The default makes sigma^2 = 2 mu, the
    population whose stage-1 confidences are calibrated (see the module docstring), so the
    default agent needs no temperature scaling."""
    tau: float = Field(default=1.0, gt=0.0, le=100.0)
    """Readout distortion: reported option logits = true logits x tau (1: reports its true
    beliefs; > 1 overconfident readout; < 1 underconfident). Behaviour uses the true beliefs."""
    verbal_offset: float = Field(default=0.0, ge=-100.0, le=100.0)
    """Overconfidence of the confidence it *states* (the `verbal` and `verbal-2stage`
    readouts), in probability points added to its true probability before rounding
    (0: states its belief; > 0 overconfident; < 0 underconfident)."""
    verbal_rounding: Literal[1, 5, 10] = 10
    """The stated confidence is a multiple of this many points (people and LLMs state round
    numbers: Xiong et al. 2024)."""
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
    """Stage-2 log-odds of the initially chosen option (docs/design.md), for arrays of trials.

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


Advice = tuple[str, float, str | None]
"""(advice type, stated accuracy, advised label or None)."""


def _advice_of(facts: AdviceFacts) -> list[Advice]:
    """The advice of a later turn: its one advisor, or its sequence of `advisors`.

    One advisor of no stated direction counts as neutral and one of no stated accuracy as
    uninformative (0.5): neither moves the agent.
    """
    if facts.advisors is None:
        accuracy = facts.accuracy if facts.accuracy is not None else 0.5
        return [(facts.advice or "neutral", float(accuracy), facts.advised)]
    return [(one.advice, float(one.accuracy), one.advised) for one in facts.advisors]


def report_many(p_true: npt.ArrayLike, tau: float) -> FloatArray:
    """The reported distribution behind a true one over K options: softmax(tau log p)."""
    p = np.asarray(p_true, dtype=np.float64)
    if tau == 1.0:
        return p
    with np.errstate(divide="ignore"):
        scaled = tau * np.log(p)
    return np.asarray(special.softmax(scaled), dtype=np.float64)


def bayes_shift(
    probs: FloatArray, reference: int, advice: str, accuracy: float, advised: int | None
) -> float:
    """The ideal observer's log-odds shift of option `reference` by one advisor.

    The same definition as `analysis.engines.bayes.bayes_shift` (a test keeps the two in
    step): `paradigms` may not import the analysis, and the analysis reads files only.
    """
    k = len(probs)
    a = float(np.clip(accuracy, CLIP_LOW, CLIP_HIGH))
    sign = {"same": 1.0, "opposite": -1.0}.get(advice, 0.0)
    if sign == 0.0:
        return 0.0
    if k == 2:
        return float(sign * _clipped_logit(accuracy))
    wrong = (1.0 - a) / (k - 1)
    if sign > 0.0:
        return float(_clipped_logit(accuracy) + math.log(k - 1))
    if advised is None:
        raise ValueError(
            "sim:bayes: opposite advice with K > 2 options must name the advised option"
        )
    rest = 1.0 - float(probs[reference])
    share = float(np.clip(probs[advised] / rest, 0.0, 1.0)) if rest > 0.0 else 1.0 / (k - 1)
    return math.log(wrong) - math.log(share * a + (1.0 - share) * wrong)


def advisors_likelihood(k: int, advisors: Sequence[tuple[str, float, int | None]]) -> FloatArray:
    """prod_k L_k(j) over the options j: the evidence of a sequence of advisors."""
    likelihood = np.ones(k, dtype=np.float64)
    for advice, accuracy, advised in advisors:
        if advice == "neutral" or advised is None:
            continue
        a = float(np.clip(accuracy, CLIP_LOW, CLIP_HIGH))
        step = np.full(k, (1.0 - a) / (k - 1))
        step[advised] = a
        likelihood *= step
    return likelihood


def sequence_shifts(
    probs: FloatArray, reference: int, advisors: Sequence[tuple[str, float, int | None]]
) -> list[float]:
    """Each advisor's shift, computed from the ideal observer's distribution before it."""
    current = np.asarray(probs, dtype=np.float64)
    shifts = []
    for advice, accuracy, advised in advisors:
        shifts.append(bayes_shift(current, reference, advice, accuracy, advised))
        if len(current) > 2 and advised is not None and advice != "neutral":
            current = current * advisors_likelihood(len(current), [(advice, accuracy, advised)])
            current = current / current.sum()
    return shifts


def _spread_rest(true: FloatArray, reference: int, q: float, likelihood: FloatArray) -> FloatArray:
    """The stage-2 distribution: q on the reference option, 1 - q over the others in
    proportion to p_j L_j (uniform over them if that is all zero)."""
    weights = true * likelihood
    weights[reference] = 0.0
    total = float(weights.sum())
    if total <= 0.0:
        weights = np.ones_like(weights)
        weights[reference] = 0.0
        total = float(weights.sum())
    final = weights / total * (1.0 - q)
    final[reference] = q
    return np.asarray(final, dtype=np.float64)


@dataclass(frozen=True)
class TurnBelief:
    """What the agent truly believes at one turn, and how it samples its answer from it.

    `probs` is its true distribution over the options (label order); `reference` is the
    option whose slice comes first when an answer is drawn from one uniform number (the
    correct option at turn 1, the option the trial is framed on later). Every readout
    starts from this one object: `answer` reports it (through `tau`) and samples from it,
    `reply` samples from it or states it (through the verbal distortion).
    """

    labels: tuple[str, ...]
    probs: FloatArray
    reference: int
    even_rest: bool
    """The other options share the rest equally (turn 1), so the drawn option is found by
    one division instead of a walk through their slices."""
    raw: dict[str, JsonValue]
    """What the agent computed, as stored with the call (`ChoiceResponse.raw`)."""

    def probability(self, label: str) -> float:
        """The true probability of one option."""
        return float(self.probs[self.labels.index(label)])

    def draw(self, u: float) -> str:
        """The answer that the uniform number `u` in [0, 1) picks."""
        ref = self.reference
        if u < self.probs[ref]:
            return self.labels[ref]
        others = [i for i in range(len(self.labels)) if i != ref]
        if len(self.labels) == 2:
            return self.labels[others[0]]
        if self.even_rest:
            # Past the reference's slice, equal slices per other option.
            each = float(self.probs[others[0]])
            index = min(int((u - float(self.probs[ref])) / each), len(others) - 1)
            return self.labels[others[index]]
        # Walk the alternatives' slices of the [p_ref, 1) interval; the last takes rounding.
        edge = float(self.probs[ref])
        for i in others:
            edge += float(self.probs[i])
            if u < edge:
                return self.labels[i]
        return self.labels[others[-1]]

    def reported(self, tau: float) -> dict[str, float]:
        """The option probabilities the agent reports through its token logprobs (`tau`)."""
        ref = self.reference
        if len(self.labels) == 2:
            shown = float(report(self.probs[ref], tau))
            return {self.labels[ref]: shown, self.labels[1 - ref]: 1.0 - shown}
        return dict(zip(self.labels, map(float, report_many(self.probs, tau)), strict=True))


def _response(belief: TurnBelief, choice: str, tau: float) -> ChoiceResponse:
    mass = belief.reported(tau)
    ordered = {label: float(mass[label]) for label in belief.labels}
    return ChoiceResponse(choice=choice, readout=readout_from_masses(ordered), raw=belief.raw)


def _advice_facts(facts: TurnFacts | None) -> AdviceFacts:
    if not isinstance(facts, AdviceFacts):
        # Every call of such a run would fail alike: stop it, saying why, in one line.
        stated = "no facts" if facts is None else f"{type(facts).__name__} facts"
        raise UserError(
            "sim:bayes answers the advice protocols only (change-of-mind, are-you-sure, "
            f"multi-advice), whose prompts state AdviceFacts; this turn states {stated}"
        )
    return facts


def _framing(facts: AdviceFacts, labels: Sequence[str]) -> tuple[str, str]:
    """(initial answer, reference): the option a later turn is framed on is the answer
    displayed as the agent's own (which the answer-wrong control makes differ from the
    turn-1 answer), else the turn-1 answer."""
    initial = facts.initial_choice
    if initial is None:
        raise ValueError("sim:bayes: a later turn's facts must state the initial_choice")
    reference = facts.displayed if facts.displayed is not None else initial
    if reference not in labels:
        raise ValueError(f"sim:bayes: {reference!r} is not an option")
    return initial, reference


def _proposed(asked: Asked, labels: Sequence[str]) -> str:
    """The option a confidence or true-or-false question is about."""
    if asked.proposed is None or asked.proposed not in labels:
        raise ValueError(
            f"sim:bayes: asked about {asked.proposed!r}, which is not an option "
            f"({', '.join(labels)})"
        )
    return asked.proposed


CALL_SEED_SALT = "sample"
"""The salt of a turn's call seed (`seed_from_id(trial_id, "sample")`, harness.planner): the
random stream from which `answer` draws a turn's noise and its answer. `reply` draws the
turn's belief from the same stream, so every readout of one trial sees the very belief
(and, for its first request, the very first answer) that `answer` gives that trial."""


class SimBayesBackend(ModelBackend):
    """The simulated agent; answers any number of requests at once."""

    capabilities = Capabilities(
        logprobs=True,
        top_k_limit=None,
        prefill=True,
        prompt_logprobs=False,
        batch=True,
        replies=True,
        reply_n=True,
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
        facts = _advice_facts(request.facts)
        if request.asked is not None:
            return self._judge(request, facts, request.asked)
        labels = tuple(request.prompt.labels)
        rng = np.random.default_rng(request.seed)
        if request.stage == 1:
            belief = self._stage1(facts, labels)
        else:
            initial, reference = _framing(facts, labels)
            # The stage-1 belief from what it reported (tau undone): the logprobs readout
            # hands back the agent's own numbers.
            true = self._true_initial(facts, labels, reference, initial)
            belief = self._stage2(facts, labels, reference, true, rng)
        return _response(belief, belief.draw(rng.random()), self.params.tau)

    def _stage1(self, facts: AdviceFacts, labels: tuple[str, ...]) -> TurnBelief:
        correct = facts.correct
        latent = self._item_latent(facts.item_id)
        p_correct = float(stage1_probability(latent))
        raw: dict[str, JsonValue] = {"latent_logodds": latent}
        ref = labels.index(correct)
        if len(labels) == 2:
            probs = np.array(
                [p_correct, 1.0 - p_correct] if ref == 0 else [1.0 - p_correct, p_correct]
            )
        else:
            # The rest, spread evenly over the foils: the agent has no favourite foil.
            each = (1.0 - p_correct) / (len(labels) - 1)
            probs = np.array([p_correct if label == correct else each for label in labels])
        return TurnBelief(labels, probs, ref, even_rest=True, raw=raw)

    def _stage2(
        self,
        facts: AdviceFacts,
        labels: tuple[str, ...],
        reference: str,
        true: FloatArray,
        rng: np.random.Generator,
    ) -> TurnBelief:
        """The belief of a later turn, from the true stage-1 belief `true` (label order);
        draws the turn's noise from `rng`."""
        shown = facts.display in OWN_DISPLAYS
        advisors = _advice_of(facts)
        noise_draw = float(rng.standard_normal())
        ref = labels.index(reference)
        indexed = [
            (kind, accuracy, None if advised is None else labels.index(advised))
            for kind, accuracy, advised in advisors
        ]
        if len(labels) == 2 and facts.advisors is None:
            kind, accuracy, _ = advisors[0]
            logodds = float(
                followup_logodds(
                    true[ref],
                    shown=shown,
                    advice=kind,
                    accuracy=accuracy,
                    noise_draw=noise_draw,
                    params=self.params,
                )
            )
        else:
            shifts = sequence_shifts(true, ref, indexed)
            weighted = sum(
                self._weight(kind) * shift
                for (kind, _, _), shift in zip(indexed, shifts, strict=True)
            )
            logodds = float(
                _clipped_logit(true[ref])
                + self.params.choice_support * float(shown)
                + weighted
                + self.params.noise * noise_draw
            )
        q = self._beta_noise(_sigmoid(logodds), rng)
        raw: dict[str, JsonValue] = {"logodds_initial": logodds, "reference": reference}
        if len(labels) == 2:
            probs = np.array([q, 1.0 - q] if ref == 0 else [1.0 - q, q], dtype=np.float64)
        else:
            probs = _spread_rest(true, ref, q, advisors_likelihood(len(labels), indexed))
        return TurnBelief(labels, probs, ref, even_rest=False, raw=raw)

    def _judge(self, request: ChoiceRequest, facts: AdviceFacts, asked: Asked) -> ChoiceResponse:
        """A true-or-false question about `asked.proposed` read by logprobs (P(True)): the
        call's labels are the question's two verdicts (true first), its belief the turn's,
        over `asked.options`. Reported undistorted, as P(True) is by replies."""
        if asked.kind != "true-or-false" or len(request.prompt.labels) != 2:
            raise ValueError(f"sim:bayes: cannot answer {asked.kind!r} by logprobs")
        options = tuple(asked.options)
        call_seed = seed_from_id(request.trial_id, CALL_SEED_SALT)
        belief = self._reply_belief(request.stage, facts, options, np.random.default_rng(call_seed))
        p_true = belief.probability(_proposed(asked, options))
        true, false = request.prompt.labels
        rng = np.random.default_rng(request.seed)
        choice = true if rng.random() < p_true else false
        masses: dict[str, float | None] = {true: p_true, false: 1.0 - p_true}
        raw: dict[str, JsonValue] = {**belief.raw, "asked": asked.kind, "p_true": p_true}
        return ChoiceResponse(choice=choice, readout=readout_from_masses(masses), raw=raw)

    # Free-text replies: the readouts without logprobs ---------------------------------------

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        if self.params.latency_s > 0:
            await asyncio.sleep(self.params.latency_s)
        return [self._reply_one(request) for request in requests]

    def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        facts = _advice_facts(request.facts)
        labels = tuple(request.labels)
        call_seed = seed_from_id(request.trial_id, CALL_SEED_SALT)
        turn = np.random.default_rng(call_seed)
        belief = self._reply_belief(request.stage, facts, labels, turn)
        # The turn's first request (its seed is the call seed) goes on drawing from the
        # turn's stream, as `answer` does; a later step (the 2-stage confidence, P(True))
        # and each request of a provider without `n` draws from its own seed.
        draws = turn if request.seed == call_seed else np.random.default_rng(request.seed)
        asked = request.asked
        texts: list[str] = []
        for _ in range(request.n):
            if asked.kind == "answer":
                texts.append(belief.draw(draws.random()))
            elif asked.kind == "answer-and-confidence":
                label = belief.draw(draws.random())
                stated = self.stated_confidence(belief.probability(label))
                texts.append(f"Answer: {label}\nConfidence: {stated}")
            elif asked.kind == "confidence":
                texts.append(
                    str(self.stated_confidence(belief.probability(_proposed(asked, labels))))
                )
            else:
                p_true = belief.probability(_proposed(asked, labels))
                texts.append("True" if draws.random() < p_true else "False")
        raw: dict[str, JsonValue] = {
            **belief.raw,
            "asked": asked.kind,
            "belief": {label: float(p) for label, p in zip(labels, belief.probs, strict=True)},
        }
        return ReplyResponse(texts=tuple(texts), raw=raw)

    def _reply_belief(
        self, stage: int, facts: AdviceFacts, labels: tuple[str, ...], turn: np.random.Generator
    ) -> TurnBelief:
        """The turn's belief when it is read from free text.

        A later turn starts from the agent's true stage-1 belief, recomputed from the item's
        latent: the confidence the facts carry is the readout's estimate of it (a frequency
        of samples, a stated number), which the agent's behaviour must not follow.
        """
        if stage == 1:
            return self._stage1(facts, labels)
        _, reference = _framing(facts, labels)
        true = self._stage1(facts, labels).probs
        return self._stage2(facts, labels, reference, true, turn)

    def stated_confidence(self, probability: float) -> int:
        """The confidence 0-100 the agent states for an option of true `probability`: plus
        `verbal_offset` points, clipped to [0, 100], rounded (half up) to a multiple of
        `verbal_rounding`."""
        step = self.params.verbal_rounding
        points = min(100.0, max(0.0, 100.0 * probability + self.params.verbal_offset))
        return math.floor(points / step + 0.5) * step

    def _beta_noise(self, q: float, rng: np.random.Generator) -> float:
        kappa = self.params.beta_kappa
        if kappa is None:
            return q
        # Both Beta parameters must be positive: q itself may round to exactly 0 or 1.
        q = float(np.clip(q, 1e-12, 1.0 - 1e-12))
        # Kept strictly inside (0, 1): a draw of exactly 0 or 1 has no log-odds.
        return float(np.clip(rng.beta(q * kappa, (1.0 - q) * kappa), 1e-12, 1.0 - 1e-12))

    def _weight(self, advice: str) -> float:
        return {"same": self.params.w_same, "opposite": self.params.w_opposite}.get(advice, 0.0)

    def _true_initial(
        self,
        facts: AdviceFacts,
        labels: Sequence[str],
        reference: str,
        initial: str,
    ) -> FloatArray:
        """The agent's true stage-1 distribution (label order), from what it reported."""
        tau = self.params.tau
        probs = facts.initial_probs
        confidence = facts.initial_confidence
        if len(labels) == 2:
            # The two-option path reads the one confidence, exactly as it always has.
            if reference == initial and confidence is not None:
                reported = float(confidence)
            elif probs is not None and probs.get(reference) is not None:
                reported = float(probs[reference])
            elif confidence is not None:
                reported = 1.0 - float(confidence)
            else:
                raise ValueError("sim:bayes needs the stage-1 confidence")
            c = float(unreport(reported, tau))
            ref = labels.index(reference)
            return np.array([c, 1.0 - c] if ref == 0 else [1.0 - c, c], dtype=np.float64)
        if probs is None or any(probs.get(label) is None for label in labels):
            raise ValueError("sim:bayes needs the stage-1 option probabilities (initial_probs)")
        reported_many = np.array([float(probs[label]) for label in labels], dtype=np.float64)
        return report_many(reported_many, 1.0 / tau)

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
        if p.beta_kappa is not None:
            q = np.clip(q, 1e-12, 1.0 - 1e-12)  # both Beta parameters positive
            q = np.clip(rng.beta(q * p.beta_kappa, (1.0 - q) * p.beta_kappa), 1e-12, 1.0 - 1e-12)
        stays = rng.random(q.size) < q
        return SimulatedBlock(
            latent=np.asarray(latent, dtype=np.float64),
            initial_correct=np.asarray(initial_correct, dtype=np.bool_),
            initial_confidence=report(true_confidence, p.tau),
            final_prob_initial=report(q, p.tau),
            changed_mind=np.asarray(~stays, dtype=np.bool_),
        )


def _params(model: ModelSection) -> SimBayesParams:
    try:
        return SimBayesParams.model_validate(model.params)
    except ValidationError as error:
        raise ConfigError(
            f"model '{model.id}' params: {describe_validation_error(error)}"
        ) from None


def _validate(model: ModelSection) -> None:
    entry_settings(model, NoSettings)  # the agent takes no key beyond the common ones
    if model.spec != "sim:bayes":
        raise ConfigError(
            f"model '{model.id}': unknown simulated agent {model.spec!r} (known: sim:bayes)"
        )
    _params(model)


def _create(model: ModelSection) -> ModelBackend:
    return SimBayesBackend(_params(model))


PROVIDER = Provider(
    "sim",
    "sim:bayes - simulated Bayesian-update agent with known parameters (no model)",
    SimBayesBackend.capabilities,
    _validate,
    _create,
    unusable_common_keys=RETRY_KEYS,  # its calls never fail transiently
)
"""The `sim` provider, registered under the entry-point group `mindshift.backends`
(pyproject.toml: `sim = "mindshift.paradigms.agent.sim_bayes:PROVIDER"`)."""
