"""What a run would do and cost, worked out without running it (`mindshift run --dry-run`).

It counts the calls a run would make — every planned call less those already stored in the
run directory, which is only read, never locked or written — and estimates their tokens
and cost. Token counts come from the stored calls of the same model and stage when there
are any (the provider's own counts), otherwise from the prompts' length at about four
characters per token, plus a few tokens per message for the chat format: an estimate
within some tens of percent, not a quote. Stage-2 prompts of items whose stage-1 answer is
not stored yet are estimated with a stand-in answer (the same length as any answer).
Output tokens: what stored calls used, else one (the label) for models read from
logprobs, and the `max_tokens` budget, an upper bound, for choice-only models.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mindshift.harness.batch_api import BATCH_PROVIDERS
from mindshift.harness.experiment import PreparedExperiment
from mindshift.harness.models.registry import free_reply_tokens, provider_of
from mindshift.harness.paradigm import TurnAnswer
from mindshift.harness.planner import CallPlanner, ModelPlan, PlannedCall
from mindshift.harness.pricing import PriceTable
from mindshift.harness.readouts import CallShape, make_readout, resolve_auto
from mindshift.harness.readouts.base import STATED_TOKENS
from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.run_format import CALLS_FILE, CallKey
from mindshift.harness.runner import RunScope
from mindshift.harness.types import Item, Prompt, Usage

FOLLOW_UP_TOKENS = 40
"""A readout's follow-up request adds the first reply and its question to the prompt."""
CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4
"""Chat formats wrap each message in a few tokens of role markers."""
ANSWER_FORMAT_TOKENS = 12
"""The answer-format line chat APIs append (see `harness.models.chat_answer`)."""


@dataclass
class ModelEstimate:
    """One model's share of a run still to make."""

    model: str
    spec: str
    planned: int = 0
    stored: int = 0
    stage1: int = 0
    stage2: int = 0
    """Calls of later turns (2, 3, ...)."""
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    output_is_upper_bound: bool = False
    cost: float | None = 0.0
    measured_stages: tuple[int, ...] = ()
    """Stages whose token counts come from stored calls rather than from prompt length."""
    readout: str = "logprobs"
    requests: int = 0
    """Provider requests the calls take (a readout may make several per call)."""
    readout_note: str = ""
    """How the readout's requests are made and priced (e.g. one request with n outputs)."""

    @property
    def calls(self) -> int:
        return self.stage1 + self.stage2


def prompt_tokens(prompt: Prompt) -> float:
    """Prompt tokens by length: characters / 4, plus the chat format's overhead."""
    chars = sum(len(message.content) for message in prompt.messages) + len(prompt.answer_prefix)
    return (
        chars / CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * (len(prompt.messages) + 1)
    ) + ANSWER_FORMAT_TOKENS


def _stored_records(run_dir: Path) -> dict[CallKey, CallRecord]:
    path = run_dir / CALLS_FILE
    if not path.is_file():
        return {}
    records: dict[CallKey, CallRecord] = {}
    for record in read_call_records(path):
        records.setdefault(record.key, record)
    return records


def _measured(records: Iterable[CallRecord]) -> dict[tuple[str, int], tuple[float, float]]:
    """Mean (input, output) tokens per (model, stage) of stored calls that report usage."""
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for record in records:
        inputs = record.usage.input_tokens
        if inputs <= 0:
            continue
        entry = sums[(record.model, record.stage)]
        entry[0] += inputs
        entry[1] += float(record.usage.output_tokens)
        entry[2] += 1
    return {key: (s[0] / s[2], s[1] / s[2]) for key, s in sums.items()}


def _stand_in(item: Item) -> TurnAnswer:
    share = 1.0 / len(item.labels)
    return TurnAnswer(choice=item.labels[0], probs=dict.fromkeys(item.labels, share))


def estimate_run(
    prepared: PreparedExperiment,
    run_dir: Path,
    table: PriceTable,
    *,
    retry_failed: bool = True,
    batch: bool = False,
    scope: RunScope | None = None,
) -> list[ModelEstimate]:
    """Per model of `scope` (default: every model, every item): the calls a run into
    `run_dir` would make, their tokens and cost."""
    scope = scope or RunScope()
    config, paradigm = prepared.config, prepared.paradigm
    stored = _stored_records(run_dir)
    if retry_failed:
        stored = {key: record for key, record in stored.items() if not record.failed}
    measured = _measured(stored.values())
    items = list(paradigm.items())
    calibration = list(paradigm.calibration_items())
    conditions = list(paradigm.conditions())
    estimates = []
    for model in scope.selected(config.models):
        planner = CallPlanner(
            experiment=config.experiment.name,
            seed=config.experiment.seed,
            repeats=config.experiment.repeats,
            paradigm=paradigm,
            model=ModelPlan(model.id, model.spec, model.temperature),
            items=scope.first_items(model, items),
            calibration_items=scope.first_items(model, calibration),
            conditions=conditions,
        )
        left = planner.remaining(stored, stand_in=_stand_in)
        offered = provider_of(model).capabilities
        readout_name = resolve_auto(offered) if model.readout == "auto" else model.readout
        readout = make_readout(readout_name, model.samples, offered)
        shape = (
            CallShape(requests=1, outputs=1) if readout is None else readout.shape(offered.reply_n)
        )
        estimate = ModelEstimate(
            model.id,
            model.spec,
            planned=left.planned,
            readout=readout_name,
            readout_note=shape.note,
        )
        # A later turn whose earlier answer is not stored yet is sized with a stand-in
        # answer; "not run" records are no calls.
        calls: list[PlannedCall] = [*left.first_turns, *left.ready, *left.stand_ins]
        prompts: dict[int, list[Prompt]] = defaultdict(list)
        for call in calls:
            prompts[call.turn].append(call.request.prompt)
        estimate.stage1 = len(prompts[1])
        estimate.stage2 = sum(len(staged) for turn, staged in prompts.items() if turn > 1)
        estimate.stored = estimate.planned - estimate.calls
        estimate.requests = estimate.calls * shape.requests
        measured_stages = []
        for stage, staged in sorted(prompts.items()):
            if not staged:
                continue
            mean = measured.get((model.id, stage))
            if mean is not None:
                measured_stages.append(stage)
                estimate.input_tokens += mean[0] * len(staged)
                estimate.output_tokens += mean[1] * len(staged)
                continue
            # Every request of a readout resends the prompt; a follow-up also replays the
            # first reply and its question (some tens of tokens, counted as the prompt's).
            prompt_total = sum(prompt_tokens(prompt) for prompt in staged)
            estimate.input_tokens += prompt_total * shape.requests
            estimate.input_tokens += FOLLOW_UP_TOKENS * shape.follow_ups * len(staged)
            reply_limit = free_reply_tokens(model)
            if readout is not None:  # a free-text reply: at least a short one's room
                reply_limit = max(reply_limit or 0, STATED_TOKENS)
            if reply_limit is not None:  # a free-text reply, up to its limit
                estimate.output_is_upper_bound = True
                estimate.output_tokens += reply_limit * len(staged) * shape.outputs
            else:
                estimate.output_tokens += len(staged) * shape.outputs
        estimate.measured_stages = tuple(measured_stages)
        usage = Usage(
            input_tokens=math.ceil(estimate.input_tokens),
            output_tokens=math.ceil(estimate.output_tokens),
        )
        batched = batch and model.spec.startswith(BATCH_PROVIDERS)
        estimate.cost = table.cost(model.spec, usage, batch=batched)
        estimates.append(estimate)
    return estimates
