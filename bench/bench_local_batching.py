"""How much batching speeds up `local:smollm2` on the change-of-mind paradigm's stage-2 prompts.

The requests are the ones a run would send, made by the runner's own call planner
(`harness.planner.CallPlanner`) for the change-of-mind paradigm (`paradigms.change_of_mind`,
default settings: latitude questions, seed `--seed`): each item's turn-1 call; the model
answers it (one call at a time, the same in every mode, untimed); the planner then makes,
from the record of that answer, the item's 36 stage-2 calls (display {shown, hidden} x
advice {same, opposite, neutral} x accuracy {0.5 .. 1.0}), with their trial ids, seeds and
stated facts. Those 36 requests per item are answered three ways:

- sequential: one call at a time (what a backend without batching does);
- batched: all 36 in one right-padded forward pass, LM head at the last token only;
- batched+prefix: as batched, with the prompts' common token prefix run once and its
  key/value cache repeated across the batch.

Each way runs in its own child process, so its peak resident memory (ru_maxrss) is its own;
the parent checks that every child answered the very same requests. The agreement column is
the largest difference in option probability from sequential. CPU time per call (all
threads) is printed beside wall-clock rates because on a shared machine the latter move with
the load.

    python bench/bench_local_batching.py --items 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mindshift.harness.types import ChoiceRequest

MODES = ["sequential", "batched", "batched+prefix"]
MODEL_ID = "smollm2"


def paradigm_requests(backend: Any, items: int, seed: int) -> tuple[list[list[ChoiceRequest]], str]:
    """Per item, the 36 stage-2 requests the runner would send for `local:smollm2`, and a
    digest of them (the parent checks that every mode got the same ones).

    The runner's own planner makes them: its turn-1 call of each item, the record of the
    model's answer, and the turn-2 calls that record unlocks (`CallPlanner.after`), so the
    trial ids, seeds, prompts and facts are the ones a run would send."""
    from mindshift.harness.config import parse_config
    from mindshift.harness.experiment import prepare
    from mindshift.harness.planner import CallPlanner, ModelPlan
    from mindshift.harness.readouts.backend import readout_name_of
    from mindshift.paradigms import PARADIGMS

    config = parse_config(
        {
            "experiment": {"name": "bench-batching", "paradigm": "change-of-mind", "seed": seed},
            "paradigm": {"items": items},
            "models": [{"id": MODEL_ID, "spec": "local:smollm2"}],
        }
    )
    paradigm = prepare(config, PARADIGMS).paradigm
    model = config.models[0]
    planner = CallPlanner(
        experiment=config.experiment.name,
        seed=config.experiment.seed,
        repeats=1,
        paradigm=paradigm,
        model=ModelPlan(model.id, model.spec, model.temperature, readout_name_of(backend)),
    )

    groups = []
    digest = hashlib.sha256()
    for item in planner.items:
        first = planner.first_call(item, repeat=0)
        (answer,) = backend.answer_blocking([first.request])
        assert answer.choice is not None, answer.error
        record = planner.record(first, answer, elapsed=answer.latency_s or 0.0, batch_size=1)
        later, not_run = planner.after(record, item, stored={})
        assert not not_run and all(call.turn == 2 for call in later)
        group = [call.request for call in later]
        for request in group:
            sent = [request.trial_id, request.seed, request.prompt.to_json()]
            digest.update(json.dumps([*sent, request.situation_json()], sort_keys=True).encode())
        groups.append(group)
    return groups, digest.hexdigest()


def _child(mode: str, items: int, threads: int | None, seed: int) -> dict[str, object]:
    from mindshift.harness.models.smollm2 import smollm2_folder
    from mindshift.harness.models.transformers_lm import TransformersBackend

    backend = TransformersBackend(
        smollm2_folder(), threads=threads, share_prefix=mode == "batched+prefix"
    )
    groups, digest = paradigm_requests(backend, items, seed)
    backend.answer_blocking(groups[0][:2])  # warm-up: first-call allocations and label ids
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probs: list[float] = []
    tokens = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for group in groups:
        if mode == "sequential":
            responses = [backend.answer_blocking([request])[0] for request in group]
        else:
            responses = backend.answer_blocking(group)
        for request, response in zip(group, responses, strict=True):
            assert response.readout is not None and response.readout.probs is not None
            probs.append(response.readout.probs[request.prompt.labels[0]])
            tokens += response.usage.input_tokens
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "mode": mode,
        "calls": len(probs),
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "prompt_tokens": tokens,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_load_mib": rss_before / 1024,
        "p_a": probs,
        "threads": backend.describe()["torch_threads"],
        "prompts_digest": digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3, help="latitude items (36 calls each)")
    parser.add_argument("--seed", type=int, default=0, help="the experiment seed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.items, args.threads, args.seed)))
        return

    load_before = os.getloadavg()[0]
    results = {}
    for mode in MODES:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
        command += ["--items", str(args.items), "--seed", str(args.seed)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])

    base = results["sequential"]
    if len({row["prompts_digest"] for row in results.values()}) != 1:
        raise SystemExit("the modes did not answer the same requests")
    print(
        f"local:smollm2, {args.items} change-of-mind items x 36 stage-2 prompts (the "
        f"paradigm's, seed {args.seed}), "
        f"{base['prompt_tokens'] / base['calls']:.0f} prompt tokens per call on average, "
        f"{base['threads']} torch threads on {os.cpu_count()} CPUs "
        f"(1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    # Wall-clock rates depend on whatever else the machine runs; CPU time per call much less.
    header = (
        f"{'mode':<16}{'calls/s':>9}{'speed-up':>10}{'s/item':>8}{'CPU ms/call':>13}"
        f"{'peak RSS MiB':>14}{'max |dp|':>10}"
    )
    print(header)
    print("-" * len(header))
    for mode in MODES:
        row = results[mode]
        rate = row["calls"] / row["seconds"]
        speedup = rate / (base["calls"] / base["seconds"])
        diff = max(abs(a - b) for a, b in zip(row["p_a"], base["p_a"], strict=True))
        print(
            f"{mode:<16}{rate:>9.1f}{speedup:>9.2f}x{row['seconds'] / args.items:>8.2f}"
            f"{1000 * row['cpu_seconds'] / row['calls']:>13.0f}"
            f"{row['peak_rss_mib']:>14.0f}{diff:>10.1e}"
        )


if __name__ == "__main__":
    main()
