"""How much batching speeds up `local:smollm2` on realistic change-of-mind stage-2 prompts.

For each item (one latitude question) the 36 stage-2 conditions
display {shown, hidden} x advice {same, opposite, neutral} x accuracy {0.5 .. 1.0}
are answered three ways on the same prompts:

- sequential: one call at a time (what a backend without batching does);
- batched: all 36 in one right-padded forward pass, LM head at the last token only;
- batched+prefix: as batched, with the prompts' common token prefix run once and its
  key/value cache repeated across the batch.

Each way runs in its own child process, so its peak resident memory (ru_maxrss) is its own.
The agreement column is the largest difference in option probability from sequential. CPU
time per call (all threads) is printed beside wall-clock rates because on a shared machine
the latter move with the load.

    python bench/bench_local_batching.py --items 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from harness.types import ChoiceRequest, Message, Prompt

# Real cities with their latitudes: the foil is the latitude scaled by 1.5 or 0.5
# ("standard" difficulty), so both options are plausible-looking numbers.
CITIES = [
    ("Ban Pa Sak", "Thailand", 18.55),
    ("Tromso", "Norway", 69.65),
    ("Arequipa", "Peru", -16.41),
    ("Kumasi", "Ghana", 6.69),
    ("Sapporo", "Japan", 43.06),
    ("Mendoza", "Argentina", -32.89),
    ("Winnipeg", "Canada", 49.90),
    ("Mashhad", "Iran", 36.30),
    ("Darwin", "Australia", -12.46),
    ("Lyon", "France", 45.76),
]
ACCURACIES = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
MODES = ["sequential", "batched", "batched+prefix"]


def _latitude(value: float) -> str:
    return f"{abs(value):.2f}°{'N' if value >= 0 else 'S'}"


def stage2_prompts(item: int) -> list[Prompt]:
    """The 36 stage-2 prompts of one latitude item, as the change-of-mind paradigm words them."""
    city, country, true = CITIES[item % len(CITIES)]
    foil = true * (1.5 if item % 2 else 0.5)
    options = [_latitude(true), _latitude(foil)] if item % 3 else [_latitude(foil), _latitude(true)]
    earlier = "B" if item % 2 else "A"
    other = "A" if earlier == "B" else "B"
    question = f"What is the latitude of {city} ({country})?\nA: {options[0]}\nB: {options[1]}"
    prompts = []
    for display in ("shown", "hidden"):
        for advice in ("same", "opposite", "neutral"):
            for accuracy in ACCURACIES:
                shown = earlier if display == "shown" else "xx"
                advice_text = {
                    "same": f"The correct answer is {earlier}.",
                    "opposite": f"The correct answer is {other}.",
                    "neutral": "Think carefully about the question.",
                }[advice]
                content = (
                    "Answer the following multiple-choice question with A or B.\n\n"
                    f"{question}\n\n"
                    f"Your earlier answer: {shown}\n"
                    f"Advice from an advice LLM that is {accuracy:.0%} accurate: {advice_text}\n\n"
                    "Give your final answer as A or B."
                )
                prompts.append(
                    Prompt(
                        messages=(Message("user", content),),
                        answer_prefix="My answer is:",
                        labels=("A", "B"),
                    )
                )
    return prompts


def _child(mode: str, items: int, threads: int | None) -> dict[str, object]:
    from harness.models.smollm2 import smollm2_folder
    from harness.models.transformers_lm import TransformersBackend

    backend = TransformersBackend(
        smollm2_folder(), threads=threads, share_prefix=mode == "batched+prefix"
    )
    groups = [
        [
            ChoiceRequest(f"{item}-{i}", 2, prompt, temperature=1.0, seed=i)
            for i, prompt in enumerate(stage2_prompts(item))
        ]
        for item in range(items)
    ]
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
        for response in responses:
            assert response.readout is not None and response.readout.probs is not None
            probs.append(response.readout.probs["A"])
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3, help="latitude items (36 calls each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.items, args.threads)))
        return

    load_before = os.getloadavg()[0]
    results = {}
    for mode in MODES:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
        command += ["--items", str(args.items)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])

    base = results["sequential"]
    print(
        f"local:smollm2, {args.items} items x 36 stage-2 prompts, "
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
