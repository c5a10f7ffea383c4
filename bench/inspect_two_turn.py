"""The two-turn change-of-mind task in inspect_ai, for `bench_throughput.py` (its own venv).

One sample per item; the solver makes the stage-1 call, then the item's 36 stage-2 calls
concurrently, each in a fresh context built from the stage-1 answer — the work mindshift
does for the same item. Timed like the other contenders of bench_throughput.py: from after
the module imports (inspect_ai, its openai provider and the openai SDK) to the end of
`eval()`, so building the task, inspect_ai's setup and its log writing are included. Run
by bench_throughput.py with the python of a virtual environment that has inspect_ai (never
a dependency of mindshift); prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import openai  # noqa: F401  imported before the clock, as for every contender
from inspect_ai import Task, eval, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model
from inspect_ai.solver import Generate, TaskState, solver

# The provider eval() would import lazily: imported before the clock too (a private module:
# an inspect_ai without it imports its provider inside eval()).
with contextlib.suppress(ImportError):
    import inspect_ai.model._providers.openai  # noqa: F401

MODEL = "bench-model"
CALLS: list[int] = []


def config(seed: int) -> GenerateConfig:
    return GenerateConfig(max_tokens=8, temperature=1.0, seed=seed, logprobs=True, top_logprobs=20)


@solver
def two_turn():  # type: ignore[no-untyped-def]
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        prompts: dict[str, Any] = state.metadata["prompts"]
        number = int(state.sample_id or 0)
        first = await model.generate(
            [ChatMessageUser(content=prompts["stage1"][-1]["content"])], config=config(number)
        )
        answer = first.completion.strip()
        followups = prompts["stage2"].get(answer) or next(iter(prompts["stage2"].values()))
        await asyncio.gather(
            *(
                model.generate(
                    [ChatMessageUser(content=messages[-1]["content"])],
                    config=config(number * 100 + k),
                )
                for k, messages in enumerate(followups)
            )
        )
        CALLS.append(1 + len(followups))
        return state

    return solve


@task
def change_of_mind(prompts_path: str) -> Task:
    prompts = json.loads(Path(prompts_path).read_text(encoding="utf-8"))
    samples = [
        Sample(input=p["stage1"][-1]["content"], id=n, metadata={"prompts": p})
        for n, p in enumerate(prompts)
    ]
    return Task(dataset=samples, solver=two_turn())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--items", type=int)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "bench")
    with tempfile.TemporaryDirectory() as logs:
        # Setup and log writing included (building the task happens inside the interval).
        started, cpu_started = time.perf_counter(), time.process_time()
        (log,) = eval(
            change_of_mind(args.prompts),
            model=f"openai/{MODEL}",
            model_base_url=args.base_url,
            # Chat completions, as the other contenders use (inspect may pick the
            # Responses API for an unknown model name).
            model_args={"responses_api": False},
            max_connections=args.concurrency,
            max_samples=args.concurrency,
            log_dir=logs,
            display="none",
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    if log.status != "success":
        raise SystemExit(f"inspect_ai run {log.status}: {log.error}")
    print(json.dumps({"calls": sum(CALLS), "seconds": seconds, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    main()
