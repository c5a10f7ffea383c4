"""Throughput of mindshift's runner against its ceiling and against inspect_ai.

The two-turn change-of-mind paradigm (per item: one stage-1 call, then its 36 stage-2 calls
built from the stage-1 answer) runs against a local zero-latency OpenAI-compatible server
(`harness.testing.fault_server` with no faults, in its own process) three ways, one after
the other, at the same concurrency:

- raw: a minimal asyncio loop over the `openai` SDK (`chat.completions.create`, a
  semaphore, the answer's top logprobs read, results kept in memory): the ceiling;
- raw-post: the same loop through the SDK's generic `client.post` (the path mindshift's
  `openai:` backend takes, skipping the typed-params transform): the stricter ceiling,
  which shows mindshift's own overhead;
- mindshift: `execute()` of a config with `openai:` and `base_url`, everything included
  (preflight, retry policy, adaptive limiter, readout, one JSON line per call appended to
  calls.jsonl, trials.parquet written at the end);
- inspect: inspect_ai running the equivalent task (one sample per item whose solver makes
  the stage-1 call, then the 36 stage-2 calls concurrently), from its own virtual
  environment (`--inspect-python`), never a dependency of mindshift.

Every contender runs in a fresh child process and gets the same prompts (built once by the
paradigm; stage-2 prompts for either stage-1 answer). Trials are stage-2 trials (items x
36); each is timed from its first call to its last (imports and setup excluded; mindshift's
preflight and trials.parquet included).

    python bench/bench_throughput.py --items 200 --concurrency 32 \\
        --inspect-python /tmp/inspect-venv/bin/python

`--profile FILE` runs the mindshift contender under cProfile and writes the stats there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
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
    from harness.config import parse_config
    from harness.experiment import prepare
    from harness.models.openai_chat import chat_messages
    from harness.paradigm import InitialAnswer
    from paradigms import PARADIGMS

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
    import httpx2
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
    prompts = json.loads(prompts_path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    calls = asyncio.run(_raw(base_url, prompts, concurrency, generic_post=generic_post))
    return {"calls": calls, "seconds": time.perf_counter() - started}


def run_mindshift(
    base_url: str, items: int, concurrency: int, profile: str | None
) -> dict[str, Any]:
    from harness.config import parse_config
    from harness.experiment import execute, prepare
    from paradigms import PARADIGMS

    prepared = prepare(parse_config(_config_dict(items, base_url, concurrency)), PARADIGMS)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        started = time.perf_counter()
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            report = profiler.runcall(execute, prepared, run_dir)
            profiler.dump_stats(profile)
        else:
            report = execute(prepared, run_dir)
        seconds = time.perf_counter() - started
    return {"calls": report.calls_made["api"], "seconds": seconds}


# ------------------------------------------------------------------ the parent


def _child(args: list[str], python: str = sys.executable) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [python, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _served(base_url: str) -> int:
    """Chat completions the server has answered so far."""
    import urllib.request

    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/stats", timeout=10) as response:
        stats: dict[str, int] = json.loads(response.read())
    return int(stats.get("requests", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--inspect-python", help="python of a venv with inspect_ai installed")
    parser.add_argument("--profile", help="write the mindshift contender's cProfile stats here")
    parser.add_argument("--role", choices=["raw", "raw-post", "mindshift"], help=argparse.SUPPRESS)
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

    server = subprocess.Popen(
        [sys.executable, "-m", "harness.testing.fault_server", "--idle-timeout", "120"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            prompts = Path(tmp) / "prompts.json"
            build_prompts(args.items, prompts)
            common = ["--base-url", base_url, "--concurrency", str(args.concurrency)]
            common += ["--items", str(args.items), "--prompts", str(prompts)]
            script = str(Path(__file__).resolve())
            contenders: dict[str, tuple[list[str], str]] = {
                "raw": ([script, "--role", "raw", *common], sys.executable),
                "raw-post": ([script, "--role", "raw-post", *common], sys.executable),
                "mindshift": ([script, "--role", "mindshift", *common], sys.executable),
            }
            if args.profile:
                contenders["mindshift"][0].extend(["--profile", args.profile])
            if args.inspect_python:
                inspect_script = str(ROOT / "bench" / "inspect_two_turn.py")
                contenders["inspect_ai"] = ([inspect_script, *common], args.inspect_python)
            results = {}
            for name, (child_args, python) in contenders.items():
                before = _served(base_url)
                results[name] = _child(child_args, python)
                # Count what reached the server: a contender that fails its calls quietly
                # would otherwise look fast.
                results[name]["served"] = _served(base_url) - before
    finally:
        server.terminate()
        server.wait(timeout=30)

    trials = args.items * 36
    print(
        f"{args.items} items x (1 + 36) calls = {args.items * 37} calls, {trials} trials; "
        f"concurrency {args.concurrency}; {os.cpu_count()} CPUs"
    )
    print(f"{'contender':<12}{'served':>8}{'seconds':>10}{'calls/s':>10}{'trials/s':>10}")
    for name, result in results.items():
        seconds = result["seconds"]
        print(
            f"{name:<12}{result['served']:>8}{seconds:>10.2f}"
            f"{result['served'] / seconds:>10.0f}{trials / seconds:>10.0f}"
        )
    raw_rate = trials / results["raw"]["seconds"]
    ours = trials / results["mindshift"]["seconds"]
    print(f"mindshift / raw loop: {ours / raw_rate:.2f} (goal >= 0.8)")
    post_rate = trials / results["raw-post"]["seconds"]
    print(f"mindshift / raw loop on the SDK's generic post: {ours / post_rate:.2f}")
    if "inspect_ai" in results:
        theirs = trials / results["inspect_ai"]["seconds"]
        print(f"mindshift / inspect_ai: {ours / theirs:.2f} (goal >= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
