"""Throughput of mindshift's runner against the strongest raw loop and against inspect_ai.

The two-turn change-of-mind paradigm (per item: one stage-1 call, then its 36 stage-2 calls
built from the stage-1 answer) runs against a local zero-latency OpenAI-compatible server
(`harness.testing.fault_server` with no faults, in its own process), at the same concurrency,
four ways:

- raw-post: a minimal asyncio loop over the `openai` SDK's generic `client.post` (the path
  mindshift's `openai:` backend takes: a semaphore, the answer's top logprobs read, results
  kept in memory): THE ceiling, the fastest way to make these calls through the SDK;
- raw: the same loop through the typed `chat.completions.create` (which transforms its
  parameters and builds pydantic objects): a second reference;
- mindshift: `prepare()` + `execute()` of a config with `openai:` and `base_url`
  (preflight, retry policy, adaptive limiter, readout, one JSON line per call appended to
  calls.jsonl, manifest, trials.parquet written at the end);
- inspect_ai: the equivalent task (one sample per item whose solver makes the stage-1 call,
  then the 36 stage-2 calls concurrently) through `eval()`, from its own virtual environment
  (`--inspect-python`), never a dependency of mindshift; it writes its .eval log.

Timing basis, the same for every contender: setup and log writing INCLUDED. The clock
starts once the contender's process has imported its framework and the openai SDK, and stops
at the last result in memory (raw loops) or on disk (mindshift's calls.jsonl, manifest and
trials.parquet; inspect_ai's .eval log). Inside: reading the prompts or building the
paradigm's items, validating the config, creating the client, inspect_ai's eval setup
(task, model, log), mindshift's preflight request, every call, every file written.
Interpreter start and those imports are excluded for all; imports that inspect_ai makes
lazily inside `eval()` (beyond the openai SDK) stay inside its interval.

Each contender runs in a fresh child process. The contenders are interleaved in `--rounds`
rounds, the order rotated every round, and every ratio is taken within one round, because on
a shared machine the absolute rates drift with the load. The server counts the chat
completions it served; each contender must have made exactly its planned calls (items x 37,
plus mindshift's one preflight request), else the benchmark fails. Trials are stage-2 trials
(items x 36).

    python bench/bench_throughput.py --items 200 --concurrency 32 --rounds 3 \\
        --inspect-python ~/.cache/mindshift/inspect-venv/bin/python

`--profile FILE` runs the mindshift contender under cProfile and writes the stats there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"


def build_prompts(items: int, path: Path) -> None:
    """Stage-1 messages and, for each possible stage-1 answer, the 36 stage-2 messages."""
    from mindshift.harness.config import parse_config
    from mindshift.harness.experiment import prepare
    from mindshift.harness.models.chat_answer import chat_messages
    from mindshift.harness.paradigm import InitialAnswer
    from mindshift.paradigms import PARADIGMS

    prepared = prepare(parse_config(_config_dict(items, "http://unused/v1", 1)), PARADIGMS)
    paradigm = prepared.paradigm
    prompts = []
    for item in paradigm.items():
        stage2 = {}
        for label in item.labels:
            answer = InitialAnswer(choice=label, probs={lab: 0.5 for lab in item.labels})
            stage2[label] = [
                chat_messages(paradigm.followup_prompt(item, condition, answer).prompt)
                for condition in paradigm.conditions()
            ]
        stage1 = chat_messages(paradigm.initial_prompt(item).prompt)
        prompts.append({"stage1": stage1, "stage2": stage2})
    path.write_text(json.dumps(prompts), encoding="utf-8")


def _config_dict(items: int, base_url: str, concurrency: int) -> dict[str, Any]:
    return {
        "experiment": {"name": "bench", "paradigm": "change-of-mind", "seed": 0},
        "paradigm": {"items": items},
        "models": [
            {
                "id": "api",
                "spec": f"openai:{MODEL}",
                "base_url": base_url,
                "concurrency": concurrency,
            }
        ],
    }


# ------------------------------------------------------------------ contenders (child processes)


async def _raw(
    base_url: str, prompts: list[dict[str, Any]], concurrency: int, *, generic_post: bool
) -> int:
    import httpx2  # imported before the clock started (run_raw)
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
    slots = asyncio.Semaphore(concurrency)
    results: list[tuple[str, dict[str, float]]] = []

    async def call(messages: list[dict[str, str]], seed: int) -> str:
        body = {
            "model": MODEL,
            "messages": messages,
            "max_completion_tokens": 8,
            "temperature": 1.0,
            "seed": seed,
            "logprobs": True,
            "top_logprobs": 20,
        }
        async with slots:
            if generic_post:  # the SDK's generic post, as mindshift sends its calls
                raw = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
                choice_json = raw.json()["choices"][0]
                top_json = choice_json["logprobs"]["content"][0]["top_logprobs"]
                answer = (choice_json["message"]["content"] or "").strip()
                probs = {t["token"]: math.exp(t["logprob"]) for t in top_json}
                results.append((answer, probs))
                return answer
            response = await client.chat.completions.create(**body)  # type: ignore[call-overload]
        choice = response.choices[0]
        content = choice.logprobs.content if choice.logprobs else None
        top = content[0].top_logprobs if content else []
        answer = (choice.message.content or "").strip()
        results.append((answer, {t.token: math.exp(t.logprob) for t in top}))
        return answer

    async def item(number: int, prompt: dict[str, Any]) -> None:
        answer = await call(prompt["stage1"], number)
        followups = prompt["stage2"].get(answer) or next(iter(prompt["stage2"].values()))
        await asyncio.gather(
            *(call(messages, number * 100 + k) for k, messages in enumerate(followups))
        )

    await asyncio.gather(*(item(n, p) for n, p in enumerate(prompts)))
    await client.close()
    return len(results)


def run_raw(
    base_url: str, prompts_path: Path, concurrency: int, generic_post: bool
) -> dict[str, Any]:
    import httpx2  # noqa: F401  imports before the clock, as for every contender
    import openai  # noqa: F401

    started, cpu_started = time.perf_counter(), time.process_time()
    # Setup included: reading the prompts, the client.
    prompts = json.loads(prompts_path.read_text(encoding="utf-8"))
    calls = asyncio.run(_raw(base_url, prompts, concurrency, generic_post=generic_post))
    return {
        "calls": calls,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }


def run_mindshift(
    base_url: str, items: int, concurrency: int, profile: str | None
) -> dict[str, Any]:
    # Imports before the clock, as for every contender: the backend (and with it the openai
    # SDK) is otherwise imported lazily by prepare().
    import mindshift.harness.models.openai_chat  # noqa: F401
    from mindshift.harness.config import parse_config
    from mindshift.harness.experiment import execute, prepare
    from mindshift.paradigms import PARADIGMS

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        # Setup included, as inspect_ai's eval() includes its own: validating the config
        # and building the paradigm's items, then the run with its files.
        started, cpu_started = time.perf_counter(), time.process_time()

        def prepare_and_execute() -> Any:
            config = parse_config(_config_dict(items, base_url, concurrency))
            return execute(prepare(config, PARADIGMS), run_dir)

        if profile:
            import cProfile

            profiler = cProfile.Profile()
            report = profiler.runcall(prepare_and_execute)
            profiler.dump_stats(profile)
        else:
            report = prepare_and_execute()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
        failed = sum(json.loads(line)["error"] is not None for line in lines)
    return {
        "calls": report.calls_made["api"],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "records": len(lines),
        "failed": failed,
    }


# ------------------------------------------------------------------ the parent

CONTENDERS = ("raw-post", "raw", "mindshift", "inspect_ai")
PREFLIGHT_CALLS = {"mindshift": 1}
"""Requests a contender makes besides the trials' calls: mindshift's preflight."""


def _child(args: list[str], python: str = sys.executable) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [python, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _served(base_url: str) -> int:
    """Chat completions the server has answered so far."""
    import urllib.request

    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/stats", timeout=10) as response:
        stats: dict[str, int] = json.loads(response.read())
    return int(stats.get("requests", 0))


def check_counts(name: str, result: dict[str, Any], planned: int) -> None:
    """Every contender made exactly its planned calls, all of which the server served: one
    that skipped or failed calls quietly would otherwise look fast."""
    expected_served = planned + PREFLIGHT_CALLS.get(name, 0)
    problems = []
    if result["served"] != expected_served:
        problems.append(f"the server served {result['served']}, expected {expected_served}")
    if result["calls"] != planned:
        problems.append(f"it reports {result['calls']} calls, planned {planned}")
    if result.get("records", planned) != planned or result.get("failed", 0):
        problems.append(f"{result['records']} records, {result['failed']} failed")
    if problems:
        raise SystemExit(f"{name}: " + "; ".join(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--inspect-python", help="python of a venv with inspect_ai installed")
    parser.add_argument("--profile", help="write the mindshift contender's cProfile stats here")
    parser.add_argument("--role", choices=CONTENDERS[:3], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--prompts", help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ.setdefault("OPENAI_API_KEY", "bench")  # the local server takes any key
    if args.role in ("raw", "raw-post"):
        post = args.role == "raw-post"
        print(json.dumps(run_raw(args.base_url, Path(args.prompts), args.concurrency, post)))
        return 0
    if args.role == "mindshift":
        result = run_mindshift(args.base_url, args.items, args.concurrency, args.profile)
        print(json.dumps(result))
        return 0

    planned = args.items * 37
    trials = args.items * 36
    names = [name for name in CONTENDERS if name != "inspect_ai" or args.inspect_python]
    server = subprocess.Popen(
        [sys.executable, "-m", "mindshift.harness.testing.fault_server", "--idle-timeout", "600"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            prompts = Path(tmp) / "prompts.json"
            build_prompts(args.items, prompts)
            common = ["--base-url", base_url, "--concurrency", str(args.concurrency)]
            common += ["--items", str(args.items), "--prompts", str(prompts)]
            script = str(Path(__file__).resolve())
            commands: dict[str, tuple[list[str], str]] = {
                name: ([script, "--role", name, *common], sys.executable) for name in names[:3]
            }
            if args.profile:
                commands["mindshift"][0].extend(["--profile", args.profile])
            if args.inspect_python:
                inspect_script = str(ROOT / "bench" / "inspect_two_turn.py")
                commands["inspect_ai"] = ([inspect_script, *common], args.inspect_python)
            for number in range(args.rounds):
                # Rotate the order so that no contender always runs first (or last).
                order = names[number % len(names) :] + names[: number % len(names)]
                results: dict[str, dict[str, Any]] = {}
                for name in order:
                    child_args, python = commands[name]
                    before = _served(base_url)
                    results[name] = _child(child_args, python)
                    results[name]["served"] = _served(base_url) - before
                    check_counts(name, results[name], planned)
                rounds.append(results)
                _print_round(number + 1, order, results, trials)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"\n{args.items} items x (1 + 36) calls = {planned} calls, {trials} trials; "
        f"concurrency {args.concurrency}; {os.cpu_count()} CPUs; every contender's served "
        "count checked; timing includes setup and log writing for every contender"
    )
    header = f"{'contender':<12}" + "".join(f"{f'round {n + 1}':>10}" for n in range(len(rounds)))
    print(f"trials/s\n{header}")
    for name in names:
        rates = "".join(f"{trials / results[name]['seconds']:>10.0f}" for results in rounds)
        print(f"{name:<12}{rates}")
    ratios = [("mindshift", "raw-post", "goal >= 0.9"), ("mindshift", "raw", "")]
    if args.inspect_python:
        ratios.append(("mindshift", "inspect_ai", ""))
    print("throughput ratios (trials/s over trials/s) within each round")
    for ours, theirs, goal in ratios:
        values = [results[theirs]["seconds"] / results[ours]["seconds"] for results in rounds]
        shown = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {ours} / {theirs}: {shown} (median {statistics.median(values):.2f}) {goal}")
    # The client process's CPU time per call moves far less with the machine's load than
    # wall-clock rates do: the cost of each contender's own work, beside the rates.
    print(f"client CPU ms per call\n{header}")
    for name in names:
        cpu = "".join(
            f"{1000 * results[name]['cpu_seconds'] / results[name]['calls']:>10.3f}"
            for results in rounds
        )
        print(f"{name:<12}{cpu}")
    print("client CPU per call, theirs over mindshift's, within each round")
    for ours, theirs, _ in ratios:
        values = [
            (results[theirs]["cpu_seconds"] / results[theirs]["calls"])
            / (results[ours]["cpu_seconds"] / results[ours]["calls"])
            for results in rounds
        ]
        shown = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {theirs} / {ours}: {shown} (median {statistics.median(values):.2f})")
    return 0


def _print_round(
    number: int, order: list[str], results: dict[str, dict[str, Any]], trials: int
) -> None:
    print(f"round {number} (order: {', '.join(order)})")
    print(
        f"  {'contender':<12}{'served':>8}{'seconds':>10}{'calls/s':>10}{'trials/s':>10}"
        f"{'CPU ms/call':>13}"
    )
    for name in order:
        result = results[name]
        seconds = result["seconds"]
        print(
            f"  {name:<12}{result['served']:>8}{seconds:>10.2f}"
            f"{result['calls'] / seconds:>10.0f}{trials / seconds:>10.0f}"
            f"{1000 * result['cpu_seconds'] / result['calls']:>13.3f}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
