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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness.batch_api import BATCH_PROVIDERS
from harness.experiment import PreparedExperiment
from harness.paradigm import InitialAnswer, Item, StagePrompt
from harness.pricing import PriceTable
from harness.run_store import CALLS_FILE, CallKey, is_failure, read_call_records, record_key
from harness.trial_ids import CALIBRATION_CONDITION, INITIAL_CONDITION, trial_id
from harness.types import Prompt, Usage

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4
"""Chat formats wrap each message in a few tokens of role markers."""
ANSWER_FORMAT_TOKENS = 12
"""The answer-format line chat APIs append (see `harness.models.openai_chat`)."""


@dataclass
class ModelEstimate:
    """One model's share of a run still to make."""

    model: str
    spec: str
    planned: int = 0
    stored: int = 0
    stage1: int = 0
    stage2: int = 0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    output_is_upper_bound: bool = False
    cost: float | None = 0.0
    measured_stages: tuple[int, ...] = ()
    """Stages whose token counts come from stored calls rather than from prompt length."""

    @property
    def calls(self) -> int:
        return self.stage1 + self.stage2


def prompt_tokens(prompt: Prompt) -> float:
    """Prompt tokens by length: characters / 4, plus the chat format's overhead."""
    chars = sum(len(message.content) for message in prompt.messages) + len(prompt.answer_prefix)
    return (
        chars / CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * (len(prompt.messages) + 1)
    ) + ANSWER_FORMAT_TOKENS


def _stored_records(run_dir: Path) -> dict[CallKey, dict[str, Any]]:
    path = run_dir / CALLS_FILE
    if not path.is_file():
        return {}
    records: dict[CallKey, dict[str, Any]] = {}
    for record in read_call_records(path):
        records.setdefault(record_key(record), record)
    return records


def _measured(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], tuple[float, float]]:
    """Mean (input, output) tokens per (model, stage) of stored calls that report usage."""
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for record in records:
        usage = record.get("usage") or {}
        inputs = usage.get("input_tokens")
        if not isinstance(inputs, int) or inputs <= 0:
            continue
        entry = sums[(str(record.get("model")), int(record.get("stage", 0)))]
        entry[0] += inputs
        entry[1] += float(usage.get("output_tokens") or 0)
        entry[2] += 1
    return {key: (s[0] / s[2], s[1] / s[2]) for key, s in sums.items()}


def _stand_in(item: Item) -> InitialAnswer:
    share = 1.0 / len(item.labels)
    return InitialAnswer(choice=item.labels[0], probs=dict.fromkeys(item.labels, share))


def estimate_run(
    prepared: PreparedExperiment,
    run_dir: Path,
    table: PriceTable,
    *,
    retry_failed: bool = True,
    batch: bool = False,
) -> list[ModelEstimate]:
    """Per model: the calls a run into `run_dir` would make, their tokens and cost."""
    config, paradigm = prepared.config, prepared.paradigm
    stored = _stored_records(run_dir)
    if retry_failed:
        stored = {key: record for key, record in stored.items() if not is_failure(record)}
    measured = _measured(stored.values())
    items = list(paradigm.items())
    calibration = list(paradigm.calibration_items())
    conditions = list(paradigm.conditions())
    estimates = []
    for model in config.models:
        trial = partial(
            trial_id,
            experiment=config.experiment.name,
            seed=config.experiment.seed,
            model=model.id,
            paradigm=paradigm.name,
        )
        estimate = ModelEstimate(model.id, model.spec)
        prompts: dict[int, list[StagePrompt]] = {1: [], 2: []}
        for repeat in range(config.experiment.repeats):
            for item in items:
                first_id = trial(
                    item=item.item_id, condition=INITIAL_CONDITION, repeat=repeat, stage=1
                )
                first = stored.get((first_id, 1))
                estimate.planned += 1 + len(conditions)
                if first is None:
                    prompts[1].append(paradigm.initial_prompt(item))
                answer = _stand_in(item)
                if first is not None and not is_failure(first):
                    probs = (first.get("readout") or {}).get("probs")
                    answer = InitialAnswer(choice=str(first["choice"]), probs=probs)
                for condition in conditions:
                    key = (
                        trial(item=item.item_id, condition=condition.name, repeat=repeat, stage=2),
                        2,
                    )
                    if key in stored:
                        continue
                    if first is not None and is_failure(first):
                        continue  # recorded as "not run", no call
                    prompts[2].append(paradigm.followup_prompt(item, condition, answer))
        for item in calibration:
            estimate.planned += 1
            calibration_id = trial(
                item=item.item_id, condition=CALIBRATION_CONDITION, repeat=0, stage=1
            )
            if (calibration_id, 1) not in stored:
                prompts[1].append(paradigm.initial_prompt(item))
        estimate.stage1, estimate.stage2 = len(prompts[1]), len(prompts[2])
        estimate.stored = estimate.planned - estimate.calls
        measured_stages = []
        for stage, staged in prompts.items():
            if not staged:
                continue
            mean = measured.get((model.id, stage))
            if mean is not None:
                measured_stages.append(stage)
                estimate.input_tokens += mean[0] * len(staged)
                estimate.output_tokens += mean[1] * len(staged)
                continue
            estimate.input_tokens += sum(prompt_tokens(s.prompt) for s in staged)
            if model.choice_only:
                estimate.output_is_upper_bound = True
                estimate.output_tokens += (model.max_tokens or 4096) * len(staged)
            else:
                estimate.output_tokens += len(staged)
        estimate.measured_stages = tuple(measured_stages)
        usage = Usage(
            input_tokens=math.ceil(estimate.input_tokens),
            output_tokens=math.ceil(estimate.output_tokens),
        )
        batched = batch and model.spec.startswith(BATCH_PROVIDERS)
        estimate.cost = table.cost(model.spec, usage.to_json(), batch=batched)
        estimates.append(estimate)
    return estimates
