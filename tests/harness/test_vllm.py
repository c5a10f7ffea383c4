"""`vllm:` against a scripted vLLM server (`httpx2.MockTransport`): the prefilled payload,
readout edge cases (vLLM's own top_logprobs order included), multi-token options through
prompt_logprobs, replicas, the preflight, and starting/stopping a server process (a stand-in
process: the real server is tested in test_vllm_cpu.py). No network."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.harness.config import ModelSection, parse_config
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models import vllm_server, vllm_settings
from mindshift.harness.models.logprob_check import LogprobsUnusable
from mindshift.harness.models.provider import entry_settings, model_ref
from mindshift.harness.models.registry import PROVIDERS, validate_model
from mindshift.harness.models.vllm import VllmBackend
from mindshift.harness.models.vllm_server import plan_servers
from mindshift.harness.models.vllm_settings import VllmServeSection, VllmSettings
from mindshift.harness.readout import sample_choice
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    Message,
    Prompt,
    ReplyRequest,
    ReplyResponse,
)

URL = "http://127.0.0.1:8000/v1"
Top = list[tuple[str, float]]


def prompt(labels: tuple[str, ...] = ("A", "B")) -> Prompt:
    return Prompt(
        messages=(Message("user", "Which city is further north?\nA. Oslo\nB. Rome"),),
        answer_prefix="My answer is:",
        labels=labels,
    )


def request(
    labels: tuple[str, ...] = ("A", "B"), seed: int = 99, temperature: float = 1.0
) -> ChoiceRequest:
    return ChoiceRequest("t1", 1, prompt(labels), temperature, seed)


def next_token(sampled: str, top: Top, **extra: Any) -> dict[str, Any]:
    """A one-token chat completion as vLLM returns it: the sampled token first in the list."""
    logprob = dict(top).get(sampled, -9.0)
    body: dict[str, Any] = {
        "object": "chat.completion",
        "model": "smollm2",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": sampled},
                "logprobs": {
                    "content": [
                        {
                            "token": sampled,
                            "logprob": logprob,
                            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top],
                        }
                    ]
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61},
    }
    body.update(extra)
    return body


class FakeVllm:
    """A scripted vLLM server: /health, /version, /v1/models and chat completions."""

    def __init__(
        self,
        chat: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any] | httpx2.Response],
        served: tuple[str, ...] = ("smollm2",),
    ) -> None:
        self.chat = chat
        self.served = served
        self.chat_bodies: list[dict[str, Any]] = []
        self.hosts: list[str] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.paths.append(path)
        if path == "/health":
            return httpx2.Response(200)
        if path == "/version":
            return httpx2.Response(200, json={"version": "0.32.0"})
        if path == "/v1/models":
            return httpx2.Response(200, json={"data": [{"id": name} for name in self.served]})
        if path == "/v1/chat/completions":
            body = json.loads(request.content)
            self.chat_bodies.append(body)
            self.hosts.append(f"{request.url.host}:{request.url.port}")
            answer = self.chat(body) if callable(self.chat) else self.chat
            return (
                answer if isinstance(answer, httpx2.Response) else httpx2.Response(200, json=answer)
            )
        return httpx2.Response(404, json={"error": "no route"})


def section(**keys: Any) -> ModelSection:
    keys.setdefault("base_url", URL)
    return ModelSection(id="v", spec="vllm:smollm2", **keys)


def backend_of(
    model: ModelSection, client: httpx2.AsyncClient, environ: dict[str, str] | None = None
) -> VllmBackend:
    """The backend the registry would build for this entry, on a scripted HTTP client."""
    settings = entry_settings(model, VllmSettings)
    return VllmBackend(model_ref(model), settings, http_client=client, environ=environ)


def make_backend(fake: Callable[[httpx2.Request], Any], **keys: Any) -> VllmBackend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(fake))
    return backend_of(section(**keys), client, environ={})


def ask(backend: VllmBackend, *requests: ChoiceRequest) -> list[ChoiceResponse]:
    async def go() -> list[ChoiceResponse]:
        try:
            return await backend.answer(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def one(fake: FakeVllm, req: ChoiceRequest | None = None, **keys: Any) -> ChoiceResponse:
    return ask(make_backend(fake, **keys), req or request())[0]


# ---------------------------------------------------------------- the exact request


def test_prefilled_request_payload() -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.3), (" B", -1.4)]))
    response = one(fake, request(seed=2**62 + 3, temperature=0.8))
    assert fake.chat_bodies == [
        {
            "model": "smollm2",
            "messages": [
                {"role": "user", "content": "Which city is further north?\nA. Oslo\nB. Rome"},
                {"role": "assistant", "content": "My answer is:"},
            ],
            "max_tokens": 1,
            "temperature": 0.8,
            "seed": 2**62 + 3,
            "logprobs": True,
            "top_logprobs": 20,
            "continue_final_message": True,
            "add_generation_prompt": False,
        }
    ]
    assert response.raw["request"] == fake.chat_bodies[0]
    assert response.raw["replica"] == URL
    assert response.usage.input_tokens == 60


def test_choice_is_sampled_from_the_option_probabilities_like_the_local_backend() -> None:
    top = [(" B", math.log(0.3)), (" A", math.log(0.6)), ("\n", math.log(0.1))]
    for seed in range(20):
        response = one(FakeVllm(next_token(" B", top)), request(seed=seed, temperature=1.0))
        assert response.readout is not None and response.readout.probs is not None
        assert response.choice == sample_choice(response.readout.probs, 1.0, seed)


# ---------------------------------------------------------------- readout edge cases


def test_token_variants_are_merged_and_outside_mass_kept() -> None:
    top = [(" A", math.log(0.5)), ("A", math.log(0.2)), (" B", math.log(0.1)), ("<|im_end|>", -3.0)]
    response = one(FakeVllm(next_token(" A", top)))
    readout = response.readout
    assert readout is not None
    assert readout.mass["A"] == pytest.approx(0.7)
    assert readout.probs == pytest.approx({"A": 0.875, "B": 0.125})
    assert readout.outside_mass == pytest.approx(0.2)


def test_logprob_of_exactly_zero_is_certainty() -> None:
    response = one(FakeVllm(next_token(" B", [(" B", 0.0), (" A", -50.0)])))
    assert response.readout is not None
    assert response.readout.mass["B"] == 1.0
    assert response.choice == "B"


def test_censored_bound_ignores_the_sampled_token_vllm_lists_first() -> None:
    # vLLM lists the sampled token first even when it is outside the top-k: its tiny
    # probability is no bound on an absent label.
    top = [(" A", math.log(0.001)), (" The", math.log(0.5)), ("\n", math.log(0.2))]
    response = one(FakeVllm(next_token(" A", top)))
    readout = response.readout
    assert readout is not None
    assert readout.censored
    assert readout.mass == {"A": pytest.approx(0.001), "B": None}
    assert readout.upper_bound == {"B": pytest.approx(0.2)}
    assert response.choice == "A"  # censored: the server's sampled label stands


def test_censored_readout_with_a_non_label_sample_is_an_error() -> None:
    top = [(" The", math.log(0.5)), (" A", math.log(0.3))]
    response = one(FakeVllm(next_token(" The", top)))
    assert response.choice is None
    assert response.error is not None
    assert "censored" in response.error


def test_mass_outside_the_options() -> None:
    top = [(" A", math.log(0.2)), (" I", math.log(0.5)), (" B", math.log(0.1))]
    response = one(FakeVllm(next_token(" A", top)))
    assert response.readout is not None
    assert response.readout.outside_mass == pytest.approx(0.7)


PROMPT_IDS = [1, 9690, 198, 520, 9531, 198, 5965, 2988, 314, 42]
"""Token ids of the prefix-only prompt (the last three spell 'My answer is:')."""
OPTION_TOKENS = {"North": [(3474, -0.4), (11, -0.3)], "South": [(4820, -1.5)]}


def scored(body: dict[str, Any]) -> dict[str, Any]:
    """prompt_logprobs for the prefix-only prompt or the prefix plus one option."""
    assert body["prompt_logprobs"] == 0
    text = body["messages"][-1]["content"]
    extra = next((toks for name, toks in OPTION_TOKENS.items() if text.endswith(name)), [])
    ids = [(token, -1.0) for token in PROMPT_IDS] + extra
    prompt_logprobs: list[Any] = [None]
    prompt_logprobs += [
        {str(token): {"logprob": lp, "rank": 1, "decoded_token": "x"}} for token, lp in ids[1:]
    ]
    top = [(" N", math.log(0.4)), (" S", math.log(0.1))]
    return next_token(" N", top, prompt_logprobs=prompt_logprobs)


def test_multi_token_options_are_scored_with_prompt_logprobs() -> None:
    fake = FakeVllm(scored)
    response = one(fake, request(labels=("North", "South")))
    assert response.error is None
    contents = sorted(body["messages"][-1]["content"] for body in fake.chat_bodies)
    assert contents == ["My answer is:", "My answer is: North", "My answer is: South"]
    assert all(body["continue_final_message"] for body in fake.chat_bodies)
    readout = response.readout
    assert readout is not None
    assert readout.mass["North"] == pytest.approx(math.exp(-0.7))
    assert readout.mass["South"] == pytest.approx(math.exp(-1.5))
    assert readout.outside_mass == pytest.approx(1 - math.exp(-0.7) - math.exp(-1.5))
    assert not readout.censored
    assert response.choice in ("North", "South")
    assert response.usage.input_tokens == 3 * 60


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        ({"choices": []}, "no choices"),
        (
            {"choices": [{"message": {"content": ""}, "logprobs": {"content": []}}]},
            "no generated token",
        ),
        ({"choices": [{"message": {"content": "A"}}]}, "carries no logprobs"),
        (next_token(" A", [(" A", "x")]), "not a number"),  # type: ignore[list-item]
        (next_token(" A", [(" A", 1.5)]), "invalid log-probability"),
        (httpx2.Response(200, text="Internal Server Error"), "malformed JSON"),
        (httpx2.Response(400, json={"message": "prompt too long"}), "HTTP 400"),
    ],
)
def test_empty_and_malformed_responses_become_error_records(chat: Any, expected: str) -> None:
    response = one(FakeVllm(lambda body: chat))
    assert response.choice is None
    assert response.readout is None
    assert response.error is not None
    assert expected in response.error


def test_multi_token_options_without_prompt_logprobs_are_an_error() -> None:
    response = one(FakeVllm(next_token(" N", [(" N", -0.1)])), request(labels=("North", "South")))
    assert response.error is not None
    assert "no prompt_logprobs" in response.error


def test_malformed_prompt_logprobs_are_an_error() -> None:
    def two_per_position(body: dict[str, Any]) -> dict[str, Any]:
        answer = scored(body)
        answer["prompt_logprobs"][2] = {"5": {"logprob": -1.0}, "6": {"logprob": -2.0}}
        return answer

    response = one(FakeVllm(two_per_position), request(labels=("North", "South")))
    assert response.error is not None
    assert "malformed" in response.error


# ---------------------------------------------------------------- replicas


def test_calls_spread_across_replicas() -> None:
    urls = ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    release = asyncio.Event()
    fake = FakeVllm(next_token(" A", [(" A", -0.1), (" B", -2.4)]))

    async def held(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/chat/completions":
            await release.wait()
        return fake(request)

    backend = make_backend(held, base_url=urls)

    async def go() -> list[ChoiceResponse]:
        calls = asyncio.gather(*(backend.answer([request(seed=i)]) for i in range(6)))
        await asyncio.sleep(0.05)
        release.set()
        answered = await calls
        await backend.aclose()
        return [responses[0] for responses in answered]

    responses = asyncio.run(go())
    assert all(r.error is None for r in responses)
    assert sorted(fake.hosts) == ["10.0.0.1:8000"] * 3 + ["10.0.0.2:8000"] * 3
    assert {r.raw["replica"] for r in responses} == set(urls)


# ---------------------------------------------------------------- preflight


def run_preflight(backend: VllmBackend) -> None:
    async def go() -> None:
        try:
            await backend.preflight()
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_preflight_records_version_and_checks_the_served_model() -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.1)]))
    backend = make_backend(fake)
    run_preflight(backend)
    facts = backend.describe()
    assert facts["vllm_version"] == "0.32.0"
    assert "raw_logprobs" in facts["logprobs_mode"]
    assert fake.chat_bodies[0]["continue_final_message"] is True


def test_preflight_names_the_models_a_server_serves() -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.1)]), served=("gemma-3-12b",))
    with pytest.raises(ConfigError, match="gemma-3-12b"):
        run_preflight(make_backend(fake))


def test_preflight_reports_a_rejected_prefill_or_top_k() -> None:
    too_many = httpx2.Response(400, json={"message": "top_logprobs must be <= max_logprobs 5"})
    with pytest.raises(ConfigError, match="max_logprobs"):
        run_preflight(make_backend(FakeVllm(lambda body: too_many)))


def test_preflight_reports_an_unreachable_server() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(UserError, match="cannot be reached"):
        run_preflight(make_backend(refuse))


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"choice_only": True}, "'choice_only' cannot be used by vllm"),
        ({"thinking_budget": 0}, "'thinking_budget' cannot be used"),
        ({"base_url": None}, "either base_url"),
        ({"base_url": [URL, URL]}, "twice"),
    ],
)
def test_unusable_settings_are_config_errors(keys: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        validate_model(section(**keys))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"base_url": "localhost:8000"}, "'base_url': 'localhost:8000' is not an http"),
        ({"base_url": []}, "'base_url': the list of base URLs is empty"),
        ({"serve": {"prot": 8000}}, "unknown key 'serve.prot'"),
    ],
)
def test_config_shape_errors_name_the_model_and_the_key(
    model: dict[str, Any], expected: str
) -> None:
    data = {
        "experiment": {"name": "x", "paradigm": "change-of-mind"},
        "models": [{"id": "v", "spec": "vllm:m", **model}],
    }
    # The config reads an entry's provider keys as written; its provider checks them.
    entry = parse_config(data).models[0]
    with pytest.raises(ConfigError, match=rf"^model 'v' \(vllm:m\): {expected}"):
        validate_model(entry)


def fake_python(tmp_path: Path, script: str) -> str:
    """An executable that stands in for vLLM's interpreter (it ignores its arguments)."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def serve_section(tmp_path: Path, script: str = "exec sleep 600", **serve: Any) -> ModelSection:
    settings = {"python": fake_python(tmp_path, script), "log_dir": str(tmp_path), **serve}
    return ModelSection.model_validate({"id": "v", "spec": "vllm:smollm2", "serve": settings})


def test_serve_and_base_url_exclude_each_other(tmp_path: Path) -> None:
    both = serve_section(tmp_path).model_copy(update={"base_url": URL})
    with pytest.raises(ConfigError, match="either base_url"):
        validate_model(both)


def test_serve_checks_gpus_top_k_and_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="need 4"):
        validate_model(serve_section(tmp_path, gpus=[0, 1, 2], replicas=2, tensor_parallel_size=2))
    with pytest.raises(ConfigError, match=r"above serve\.max_logprobs"):
        validate_model(
            serve_section(tmp_path, max_logprobs=5).model_copy(update={"top_logprobs": 8})
        )
    missing = ModelSection.model_validate(
        {"id": "v", "spec": "vllm:x", "serve": {"python": str(tmp_path / "nope")}}
    )
    with pytest.raises(ConfigError, match="does not exist"):
        validate_model(missing)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"mindshift\[gpu\]"):
        validate_model(ModelSection.model_validate({"id": "v", "spec": "vllm:x", "serve": {}}))


def test_server_command_lines_and_gpu_split(tmp_path: Path) -> None:
    serve = VllmServeSection(
        model="google/gemma-3-12b-it",
        python="/opt/vllm/bin/python",
        port=8100,
        replicas=2,
        tensor_parallel_size=2,
        gpus=[4, 5, 6, 7],
        dtype="bfloat16",
        max_model_len=4096,
        extra_args=["--enforce-eager"],
        env={"VLLM_LOGGING_LEVEL": "WARNING"},
        log_dir=str(tmp_path),
    )
    plans = plan_servers("gemma-3-12b", serve)
    assert [plan.command for plan in plans] == [
        [
            "/opt/vllm/bin/python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            "google/gemma-3-12b-it",
            "--served-model-name",
            "gemma-3-12b",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tensor-parallel-size",
            "2",
            "--pipeline-parallel-size",
            "1",
            "--logprobs-mode",
            "raw_logprobs",
            "--max-logprobs",
            "20",
            "--dtype",
            "bfloat16",
            "--max-model-len",
            "4096",
            "--enforce-eager",
        ]
        for port in (8100, 8101)
    ]
    assert [plan.env["CUDA_VISIBLE_DEVICES"] for plan in plans] == ["4,5", "6,7"]
    assert all(plan.env["VLLM_LOGGING_LEVEL"] == "WARNING" for plan in plans)
    assert [plan.base_url for plan in plans] == [
        "http://127.0.0.1:8100/v1",
        "http://127.0.0.1:8101/v1",
    ]
    assert plans[0].log_path == tmp_path / "mindshift-vllm-gemma-3-12b-8100.log"


# ---------------------------------------------------------------- starting and stopping


@pytest.fixture
def free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens anywhere (no socket is opened to find out)."""
    monkeypatch.setattr(vllm_server, "port_in_use", lambda host, port: False)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_mindshift_starts_the_server_waits_for_health_and_stops_it(
    tmp_path: Path, free_ports: None
) -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.1), (" B", -2.0)]))
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(fake))
    backend = backend_of(serve_section(tmp_path, replicas=2), client)
    pids: list[int] = []

    async def go() -> list[ChoiceResponse]:
        try:
            await backend.preflight()
            pids.extend(server.pid for server in backend._servers if server.pid is not None)
            assert all(pid_alive(pid) for pid in pids)
            return await backend.answer([request()])
        finally:
            await backend.aclose()

    responses = asyncio.run(go())
    assert responses[0].error is None
    assert len(pids) == 2
    assert fake.paths.count("/health") == 2
    assert not any(pid_alive(pid) for pid in pids)
    facts = backend.describe()
    assert facts["logprobs_mode"] == "raw_logprobs"
    assert f"pid {pids[0]} port 8000" in facts["launched"]


def test_a_server_that_dies_while_starting_is_reported_with_its_log(
    tmp_path: Path, free_ports: None
) -> None:
    script = 'echo "ModuleNotFoundError: No module named vllm"; exit 3'
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(503)))
    backend = backend_of(serve_section(tmp_path, script), client)
    with pytest.raises(UserError, match=r"exited with code 3.*No module named vllm"):
        run_preflight(backend)


def test_a_server_that_never_gets_healthy_times_out_and_is_stopped(
    tmp_path: Path, free_ports: None
) -> None:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(503)))
    section = serve_section(tmp_path, startup_timeout_s=0.3)
    backend = backend_of(section, client)
    with pytest.raises(UserError, match="not healthy after"):
        run_preflight(backend)
    assert all(server.exited() for server in backend._servers)


def test_a_port_in_use_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_server, "port_in_use", lambda host, port: True)
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(200)))
    backend = backend_of(serve_section(tmp_path), client)
    with pytest.raises(UserError, match="already in use"):
        run_preflight(backend)


def test_a_server_that_dies_mid_run_stops_the_run(tmp_path: Path, free_ports: None) -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.1)]))
    dead = False

    def handler(request: httpx2.Request) -> httpx2.Response:
        if dead and request.url.path == "/v1/chat/completions":
            raise httpx2.ConnectError("refused", request=request)
        return fake(request)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    backend = backend_of(serve_section(tmp_path).model_copy(update={"max_retries": 0}), client)

    async def go() -> None:
        nonlocal dead
        try:
            await backend.preflight()
            process = backend._servers[0].process
            assert process is not None
            process.kill()
            process.wait()
            dead = True
            await backend.answer([request()])
        finally:
            await backend.aclose()

    with pytest.raises(UserError, match="server exited"):
        asyncio.run(go())


def test_the_registry_and_the_backend_share_one_capability_declaration() -> None:
    assert PROVIDERS["vllm"].capabilities is vllm_settings.CAPABILITIES
    assert VllmBackend.capabilities is vllm_settings.CAPABILITIES


def test_the_paper_models_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from mindshift.harness.config import load_config
    from mindshift.harness.experiment import prepare
    from mindshift.paradigms import PARADIGMS

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test")
    # `serve` needs vLLM where mindshift runs; this test environment has none.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    example = Path(__file__).resolve().parents[2] / "examples" / "paper-models.toml"
    config = load_config(example)
    prepare(config, PARADIGMS)
    specs = {model.spec.partition(":")[0] for model in config.models}
    assert specs == {"vllm", "openai", "gemini"}
    assert any(model.provider_keys.get("choice_only") for model in config.models)
    assert config.paradigm["items"] == 2000


# ---------------------------------------------------------------- the logprob preflight


def test_preflight_probes_each_replica_prefilled() -> None:
    fake = FakeVllm(next_token(" A", [(" A", -0.05), (" B", -3.2), ("A", -4.0)]))
    backend = make_backend(fake, base_url=[URL, "http://127.0.0.1:8001/v1"])
    run_preflight(backend)
    assert len(fake.chat_bodies) == 2
    probe = fake.chat_bodies[0]
    assert probe["messages"] == [
        {
            "role": "user",
            "content": "Which letter comes first in the alphabet: A or B? Reply with only the "
            "letter.",
        },
        {"role": "assistant", "content": "Answer:"},
    ]
    assert probe["logprobs"] is True and probe["max_tokens"] == 1


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        # vLLM writes minus infinity as -9999: a server whose logprobs are all placeholders.
        ([(" A", 0.0), (" B", -9999.0)], "placeholders"),
        ([("<think>", -0.01), ("Okay", -5.0)], "neither A nor B"),
    ],
)
def test_preflight_stops_logprobs_that_give_no_confidence(
    top: list[tuple[str, float]], expected: str
) -> None:
    fake = FakeVllm(next_token(top[0][0], top))
    with pytest.raises(LogprobsUnusable, match=expected) as caught:
        run_preflight(make_backend(fake))
    assert caught.value.fix.startswith('readout = "sampling"')
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- free-text replies


def reply_request(n: int = 4, **fields: Any) -> ReplyRequest:
    return ReplyRequest(
        trial_id="t1",
        stage=2,
        messages=(Message("user", "Which city is further north? A. Oslo B. Rome"),),
        labels=("A", "B"),
        temperature=0.8,
        seed=11,
        asked=Asked("answer-and-confidence"),
        n=n,
        **fields,
    )


def sampled(body: dict[str, Any]) -> dict[str, Any]:
    """n replies, listed last first, the first of them empty."""
    n = body.get("n", 1)
    texts = [""] + [f"A, {60 + k}%" for k in range(1, n)]
    choices = [
        {"index": k, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        for k, text in enumerate(texts)
    ]
    return {
        "object": "chat.completion",
        "choices": choices[::-1],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5 * n},
    }


def replies(backend: VllmBackend, *requests: ReplyRequest) -> list[ReplyResponse]:
    async def go() -> list[ReplyResponse]:
        try:
            return await backend.reply(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_replies_come_from_one_request_with_n() -> None:
    fake = FakeVllm(sampled)
    backend = make_backend(fake)
    assert backend.capabilities.replies and backend.capabilities.reply_n
    (response,) = replies(backend, reply_request(n=4))
    assert fake.chat_bodies == [
        {
            "model": "smollm2",
            "messages": [
                {"role": "user", "content": "Which city is further north? A. Oslo B. Rome"}
            ],
            "max_tokens": 64,
            "temperature": 0.8,
            "seed": 11,
            "n": 4,
        }
    ]
    assert response.error is None
    assert response.texts == ("", "A, 61%", "A, 62%", "A, 63%")
    assert response.usage.input_tokens == 30 and response.usage.output_tokens == 20
    assert response.raw["replica"] == URL


def test_a_reply_with_an_answer_prefix_continues_an_open_assistant_turn() -> None:
    fake = FakeVllm(sampled)
    backend = make_backend(fake)
    assert backend.capabilities.reply_prefill
    (response,) = replies(backend, reply_request(n=2, answer_prefix="My answer is:"))
    body = fake.chat_bodies[-1]
    assert body["messages"][-1] == {"role": "assistant", "content": "My answer is:"}
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False
    assert body["n"] == 2 and response.error is None and len(response.texts) == 2
    # Without a prefix the body keeps the server's defaults (a new, free assistant turn).
    replies(make_backend(fake), reply_request(n=2))
    assert "continue_final_message" not in fake.chat_bodies[-1]


def test_a_thinking_model_gets_the_entrys_max_tokens() -> None:
    fake = FakeVllm(sampled)
    replies(make_backend(fake, max_tokens=1024), reply_request(n=2, max_tokens=32))
    assert fake.chat_bodies[-1]["max_tokens"] == 1024
    replies(make_backend(fake, max_tokens=16), reply_request(n=2, max_tokens=32))
    assert fake.chat_bodies[-1]["max_tokens"] == 32


def test_reply_failures_map_as_answers_do() -> None:
    overloaded = httpx2.Response(503, json={"message": "busy"})
    (response,) = replies(make_backend(FakeVllm(lambda body: overloaded)), reply_request())
    assert response.error is not None and response.transient is not None
    empty = {"choices": [{"index": 0, "message": {"content": ""}, "finish_reason": "length"}]}
    (response,) = replies(make_backend(FakeVllm(empty)), reply_request(n=1))
    assert response.error == "every reply was empty (finish_reason 'length')"
    assert response.transient is None
    unknown = httpx2.Response(404, json={"message": "The model `x` does not exist."})
    with pytest.raises(UserError, match="404"):
        replies(make_backend(FakeVllm(lambda body: unknown)), reply_request())
