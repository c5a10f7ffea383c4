"""`openai:` through a scripted API (`httpx2.MockTransport`): payloads, readout edge cases,
choice-only mode, preflight, errors, and a whole run. No test here touches the network."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.cli import main
from mindshift.harness.concurrency import AdaptiveLimiter
from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models import openai_chat, openai_settings
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.logprob_check import LogprobsUnusable
from mindshift.harness.models.openai_chat import OpenAIChatBackend
from mindshift.harness.models.openai_settings import OpenAISettings, check_model_name
from mindshift.harness.models.provider import entry_settings, model_ref
from mindshift.harness.models.registry import PROVIDERS, validate_model
from mindshift.harness.pricing import load_price_table
from mindshift.harness.retry import CallRetrier, RetryPolicy
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    Message,
    Prompt,
    ReplyRequest,
    ReplyResponse,
    Transient,
    Usage,
)

KEY = "sk-test-not-a-real-key-1234"
ENV = {"OPENAI_API_KEY": KEY}
Handler = Callable[[httpx2.Request], httpx2.Response]


def prompt(labels: tuple[str, ...] = ("A", "B")) -> Prompt:
    return Prompt(
        messages=(
            Message("system", "You are careful."),
            Message("user", "Which city is further north?\nA. Oslo\nB. Rome"),
        ),
        answer_prefix="My answer is:",
        labels=labels,
    )


def request(labels: tuple[str, ...] = ("A", "B"), temperature: float = 1.0) -> ChoiceRequest:
    return ChoiceRequest(
        trial_id="t1", stage=1, prompt=prompt(labels), temperature=temperature, seed=123456789
    )


def completion(
    tokens: list[tuple[str, float, list[tuple[str, float]]]],
    content: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A chat completion whose reply is `tokens` (token, logprob, top alternatives)."""
    text = "".join(token for token, _, _ in tokens) if content is None else content
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": {
                    "content": [
                        {
                            "token": token,
                            "logprob": logprob,
                            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top],
                        }
                        for token, logprob, top in tokens
                    ]
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 40,
            "completion_tokens": len(tokens),
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    body.update(extra)
    return body


class Recorder:
    """A MockTransport handler that answers from a list (or a function) and keeps requests."""

    def __init__(self, *answers: httpx2.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request) if callable(answer) else answer

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def ok(body: Any) -> httpx2.Response:
    return httpx2.Response(200, json=body)


def section(spec: str = "openai:gpt-4o", **keys: Any) -> ModelSection:
    return ModelSection(id="m", spec=spec, **keys)


def make_backend(recorder: Recorder, **keys: Any) -> OpenAIChatBackend:
    spec = keys.pop("spec", "openai:gpt-4o")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(recorder))
    model = section(spec, **keys)
    settings = entry_settings(model, OpenAISettings)
    return OpenAIChatBackend(model_ref(model), settings, http_client=client, environ=ENV)


def ask(backend: OpenAIChatBackend, *requests: ChoiceRequest) -> list[ChoiceResponse]:
    async def go() -> list[ChoiceResponse]:
        try:
            return await backend.answer(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def one(recorder: Recorder, req: ChoiceRequest | None = None, **keys: Any) -> ChoiceResponse:
    return ask(make_backend(recorder, **keys), req or request())[0]


# ---------------------------------------------------------------- the exact request


def test_exact_request_payload_and_no_key_in_the_record() -> None:
    recorder = Recorder(ok(completion([("A", math.log(0.8), [("A", math.log(0.8))])])))
    response = one(recorder)
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert recorder.json() == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are careful."},
            {
                "role": "user",
                "content": "Which city is further north?\nA. Oslo\nB. Rome\n\n"
                "Reply with only the label of your answer: A or B.",
            },
        ],
        "max_completion_tokens": 8,
        "seed": 123456789,
        "temperature": 1.0,
        "logprobs": True,
        "top_logprobs": 20,
    }
    assert response.raw["request"] == recorder.json()
    assert KEY not in json.dumps(response.raw)
    assert response.usage.input_tokens == 40
    assert response.usage.cached_tokens == 8
    assert response.attempts == 1


def test_custom_base_url_top_k_and_token_budget() -> None:
    recorder = Recorder(ok(completion([("B", -0.1, [("B", -0.1)])])))
    one(
        recorder,
        base_url="http://127.0.0.1:9999/v1",
        top_logprobs=5,
        max_tokens=3,
        spec="openai:my-model",
    )
    assert str(recorder.requests[0].url) == "http://127.0.0.1:9999/v1/chat/completions"
    body = recorder.json()
    assert (body["model"], body["top_logprobs"], body["max_completion_tokens"]) == (
        "my-model",
        5,
        3,
    )


def test_temperature_of_the_request_is_sent() -> None:
    recorder = Recorder(ok(completion([("A", -0.1, [("A", -0.1)])])))
    one(recorder, request(temperature=0.7))
    assert recorder.json()["temperature"] == 0.7


# ---------------------------------------------------------------- readout edge cases


def test_token_variants_are_merged_and_outside_mass_kept() -> None:
    top = [
        (" A", math.log(0.5)),
        ("A", math.log(0.2)),
        (" B", math.log(0.1)),
        ("\n", math.log(0.05)),
    ]
    response = one(Recorder(ok(completion([(" A", math.log(0.5), top)]))))
    assert response.error is None
    assert response.choice == "A"
    readout = response.readout
    assert readout is not None
    assert readout.mass["A"] == pytest.approx(0.7)
    assert readout.probs == pytest.approx({"A": 0.875, "B": 0.125})
    assert readout.outside_mass == pytest.approx(0.2)
    assert not readout.censored


def test_logprob_of_exactly_zero_is_certainty() -> None:
    top = [("B", 0.0), ("A", -40.0)]
    response = one(Recorder(ok(completion([("B", 0.0, top)]))))
    assert response.choice == "B"
    assert response.readout is not None
    assert response.readout.mass["B"] == 1.0
    assert response.readout.probs is not None
    assert response.readout.probs["B"] == pytest.approx(1.0)


def test_option_absent_from_top_k_is_censored_with_its_bound() -> None:
    top = [("A", math.log(0.6)), ("The", math.log(0.3)), ("\n", math.log(0.04))]
    response = one(Recorder(ok(completion([("A", math.log(0.6), top)]))))
    readout = response.readout
    assert readout is not None
    assert readout.censored
    assert readout.mass["B"] is None
    assert readout.probs is None
    assert readout.outside_mass is None
    assert readout.upper_bound == {"B": pytest.approx(0.04)}
    # Still a valid trial: the provider's sampled answer stands; the record says censored.
    assert response.choice == "A"
    assert response.error is None


def test_mass_outside_the_options() -> None:
    top = [("C", math.log(0.4)), ("A", math.log(0.3)), ("B", math.log(0.2))]
    response = one(Recorder(ok(completion([("A", math.log(0.3), top)]))))
    assert response.readout is not None
    assert response.readout.outside_mass == pytest.approx(0.5)
    assert response.readout.probs == pytest.approx({"A": 0.6, "B": 0.4})


def test_answer_read_at_the_first_label_token() -> None:
    tokens = [
        ("**", -0.2, [("**", -0.2), ("A", -2.0)]),
        ("B", math.log(0.9), [("B", math.log(0.9)), ("A", math.log(0.1))]),
        ("**", -0.01, [("**", -0.01)]),
    ]
    response = one(Recorder(ok(completion(tokens))))
    assert response.choice == "B"
    assert response.raw["answer_position"] == 1
    assert response.readout is not None
    assert response.readout.probs == pytest.approx({"A": 0.1, "B": 0.9})


def test_multi_token_options_fail_loudly_without_a_call() -> None:
    recorder = Recorder(ok(completion([])))
    response = one(recorder, request(labels=("North", "South")))
    assert recorder.requests == []
    assert response.choice is None
    assert response.error is not None
    assert "single-character" in response.error


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (completion([], content=""), "empty reply"),
        ({"id": "x", "choices": []}, "no choices"),
        ({"id": "x"}, "no choices"),
        (["not", "an", "object"], "not a JSON object"),
        (completion([("The", -0.1, [("The", -0.1)])]), "no generated token is an option label"),
        (
            completion([("A", -0.1, [("A", "high")])]),  # type: ignore[list-item]
            "not a number",
        ),
        (completion([("A", -0.1, [("A", 0.5)])]), "invalid log-probability"),
        (
            {"choices": [{"message": {"content": "A"}, "logprobs": None}]},
            "carries no logprobs",
        ),
        ({"choices": [{"message": {"content": "A"}, "logprobs": {"content": [{}]}}]}, "malformed"),
    ],
)
def test_empty_and_malformed_responses_become_error_records(body: Any, expected: str) -> None:
    response = one(Recorder(ok(body)))
    assert response.choice is None
    assert response.readout is None
    assert response.error is not None
    assert expected in response.error
    assert response.raw["response"] == body


def test_a_body_that_is_no_json_is_recorded() -> None:
    response = one(Recorder(httpx2.Response(200, text="<html>gateway</html>")))
    assert response.error is not None
    assert "malformed JSON" in response.error
    assert response.raw["response"] == "<html>gateway</html>"


def test_nan_logprob_is_an_error_not_a_number() -> None:
    text = json.dumps(completion([("A", -0.1, [("A", -0.1)])])).replace("-0.1]", "NaN]")
    text = text.replace('"logprob": -0.1}]', '"logprob": NaN}]')
    response = one(Recorder(httpx2.Response(200, text=text)))
    assert response.error is not None
    assert "invalid log-probability" in response.error


# ---------------------------------------------------------------- errors and retries


def test_a_rate_limit_is_one_attempt_marked_transient_with_its_retry_after() -> None:
    limited = httpx2.Response(
        429, headers={"retry-after-ms": "1500"}, json={"error": {"message": "slow down"}}
    )
    recorder = Recorder(limited)
    response = one(recorder)
    assert len(recorder.requests) == 1  # the SDK does not retry: the runner does
    assert response.attempts == 1
    assert response.error == "HTTP 429: slow down"
    assert response.transient == Transient(rate_limited=True, retry_after_s=1.5)


def test_server_error_then_success_through_the_runners_retries() -> None:
    recorder = Recorder(
        httpx2.Response(503, headers={"retry-after": "0"}, json={"error": {"message": "x"}}),
        ok(completion([("A", -0.1, [("A", -0.1), ("B", -2.4)])])),
    )
    backend = make_backend(recorder)

    async def go() -> list[ChoiceResponse]:
        try:
            retrier = CallRetrier(backend, RetryPolicy(max_retries=2), AdaptiveLimiter(1))
            return await retrier.answer([request()])
        finally:
            await backend.aclose()

    (response,) = asyncio.run(go())
    assert response.error is None
    assert response.attempts == 2
    assert response.attempt_errors == ("HTTP 503: x",)


def test_a_body_cut_short_is_transient_and_a_bad_request_is_not() -> None:
    cut = one(Recorder(httpx2.Response(200, text='{"id": "chatcmpl-1", "choi')))
    assert cut.transient == Transient()
    recorder = Recorder(httpx2.Response(400, json={"error": {"message": "context too long"}}))
    response = one(recorder)
    assert len(recorder.requests) == 1
    assert response.attempts == 1
    assert response.error == "HTTP 400: context too long"
    assert response.transient is None


def test_preflight_retries_a_rate_limit() -> None:
    limited = httpx2.Response(429, headers={"retry-after-ms": "1"}, json={"error": {}})
    recorder = Recorder(limited, ok(completion([("A", -0.01, [("A", -0.01)])])))
    preflight(recorder)
    assert len(recorder.requests) == 2


def test_revoked_key_stops_the_run() -> None:
    recorder = Recorder(httpx2.Response(401, json={"error": {"message": "bad key"}}))
    with pytest.raises(UserError, match="HTTP 401"):
        one(recorder)


# ---------------------------------------------------------------- choice-only mode


def test_reasoning_model_without_choice_only_is_a_config_error() -> None:
    for name in ("o1-preview", "o3", "o4-mini", "gpt-5", "gpt-5-mini"):
        with pytest.raises(ConfigError, match=r'readout = "sampling".*choice_only = true'):
            validate_model(section(f"openai:{name}"))
    assert check_model_name("gpt-5-chat-latest", OpenAISettings()) is None
    assert check_model_name("gpt-4o", OpenAISettings()) is None
    assert check_model_name("o3", OpenAISettings(choice_only=True)) is None
    # A readout without logprobs runs any model; gpt-5.1 and later may give logprobs with
    # their reasoning off, and the message of a gpt-5.1 says so.
    assert check_model_name("o3", OpenAISettings(), logprobs=False) is None
    assert check_model_name("gpt-5.1", OpenAISettings(reasoning_effort="none")) is None
    problem = check_model_name("gpt-5.1", OpenAISettings())
    assert problem is not None and 'reasoning_effort = "none"' in problem


def test_choice_only_payload_and_parsed_choices() -> None:
    recorder = Recorder(
        ok(completion([], content="B")),
        ok(completion([], content="**A**")),
        ok(completion([], content="After some thought, my answer is: B.")),
    )
    backend = make_backend(recorder, spec="openai:o3", choice_only=True, reasoning_effort="low")
    responses = ask(backend, request(), request(), request())
    assert [r.choice for r in responses] == ["B", "A", "B"]
    assert all(r.readout is None and r.error is None for r in responses)
    body = recorder.json(0)
    assert body == {
        "model": "o3",
        "messages": body["messages"],
        "max_completion_tokens": 4096,
        "seed": 123456789,
        "reasoning_effort": "low",
    }
    assert backend.capabilities.choice_only and not backend.capabilities.logprobs


def test_choice_only_reply_without_a_label_is_an_error() -> None:
    recorder = Recorder(ok(completion([], content="Alas, I cannot say.")))
    response = one(recorder, spec="openai:o3", choice_only=True)
    assert response.choice is None
    assert response.error is not None
    assert "no option label" in response.error


# ---------------------------------------------------------------- preflight


def preflight(recorder: Recorder, **keys: Any) -> OpenAIChatBackend:
    backend = make_backend(recorder, **keys)

    async def go() -> None:
        try:
            await backend.preflight()
        finally:
            await backend.aclose()

    asyncio.run(go())
    return backend


PROBE_TOP = [("A", math.log(0.97)), ("B", math.log(0.02)), ("The", math.log(0.005))]
"""A usable answer to the preflight's probe (which letter comes first: A or B)."""


def test_preflight_sends_one_small_logprob_request() -> None:
    recorder = Recorder(ok(completion([("A", math.log(0.97), PROBE_TOP)])))
    backend = preflight(recorder)
    assert len(recorder.requests) == 1
    assert recorder.json() == {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": "Which letter comes first in the alphabet: A or B?\n\n"
                "Reply with only the label of your answer: A or B.",
            }
        ],
        "max_completion_tokens": 8,
        "seed": 0,
        "temperature": 1.0,
        "logprobs": True,
        "top_logprobs": 20,
    }
    assert backend.describe()["model_version"] == "gpt-4o-2024-08-06"


def test_a_choice_only_preflight_asks_for_no_logprobs() -> None:
    recorder = Recorder(ok(completion([], content="A")))
    preflight(recorder, spec="openai:o3", choice_only=True)
    assert "logprobs" not in recorder.json()
    assert recorder.json()["max_completion_tokens"] == 16


def test_preflight_stops_a_model_that_rejects_logprobs() -> None:
    rejected = httpx2.Response(
        400, json={"error": {"message": "logprobs is not supported with this model"}}
    )
    with pytest.raises(LogprobsUnusable, match=r'refuses them.*readout = "sampling"') as caught:
        preflight(Recorder(rejected), spec="openai:some-new-model")
    assert "choice_only = true" in str(caught.value)
    assert caught.value.model_id == "m"
    assert caught.value.fix.startswith('readout = "sampling"')


def test_preflight_stops_a_model_that_answers_without_logprobs() -> None:
    body = {"choices": [{"message": {"content": "A"}, "logprobs": None}]}
    with pytest.raises(LogprobsUnusable, match="carries no logprobs"):
        preflight(Recorder(ok(body)))


def test_preflight_reports_a_wrong_model_name() -> None:
    missing = httpx2.Response(404, json={"error": {"message": "model does not exist"}})
    with pytest.raises(UserError, match="model does not exist"):
        preflight(Recorder(missing))


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"top_logprobs": 21}, "at most 20"),
        ({"base_url": ["http://a/v1", "http://b/v1"]}, "one URL"),
        ({"thinking_budget": 0}, "'thinking_budget' cannot be used by openai"),
        ({"batch_size": 4}, "'batch_size' cannot be used"),
        ({"choice_only": True, "top_logprobs": 5}, "no use with choice_only"),
    ],
)
def test_unusable_settings_are_config_errors(keys: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        validate_model(section(**keys))


def test_missing_key_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        validate_model(section())
    monkeypatch.setenv("MY_KEY", "x")
    validate_model(section(api_key_env="MY_KEY"))


def test_the_registry_and_the_backend_share_one_capability_declaration() -> None:
    assert PROVIDERS["openai"].capabilities is openai_settings.OFFERED
    assert replace(openai_settings.CAPABILITIES, choice_only=True) == openai_settings.OFFERED
    for keys, expected in (
        ({}, openai_settings.CAPABILITIES),
        ({"choice_only": True}, openai_settings.CHOICE_ONLY_CAPABILITIES),
    ):
        backend = make_backend(Recorder(ok({})), **keys)
        assert backend.capabilities is expected
        asyncio.run(backend.aclose())


def test_a_mistyped_key_is_named_with_the_likely_one() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'top_logprob' \(did you mean 'top_logprobs'"
    ):
        validate_model(section(top_logprob=5))


# ---------------------------------------------------------------- a whole run


def scripted_api(request: httpx2.Request) -> httpx2.Response:
    """A model that always leans 70/30 towards A and says A."""
    body = json.loads(request.content)
    if body.get("logprobs"):
        top = [("A", math.log(0.7)), ("B", math.log(0.25)), ("\n", math.log(0.05))]
        return ok(completion([("A", math.log(0.7), top)]))
    return ok(completion([], content="A"))


def run_config(models: str) -> str:
    return (
        '[experiment]\nname = "api"\nparadigm = "change-of-mind"\nseed = 1\n\n'
        '[paradigm]\nitems = 2\ndisplays = ["shown"]\nadvice = ["opposite"]\n'
        "accuracies = [0.7]\n\n" + models
    )


@pytest.fixture
def scripted_openai(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every `openai:` backend the registry creates talks to a scripted API."""
    recorder = Recorder(scripted_api)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def create(model: ModelRef, settings: OpenAISettings) -> OpenAIChatBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(recorder))
        return OpenAIChatBackend(model, settings, http_client=client)

    monkeypatch.setattr(openai_chat, "create", create)
    return recorder


def test_a_run_through_openai_stores_readouts_and_no_key(
    scripted_openai: Recorder, tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    config = write_config(
        run_config(
            '[[models]]\nid = "gpt"\nspec = "openai:gpt-4o"\nconcurrency = 4\n\n'
            '[[models]]\nid = "o3"\nspec = "openai:o3"\nchoice_only = true\n'
        )
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    records = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert len(records) == 2 * (2 + 2)  # two models x two items x (stage 1 + one condition)
    for record in records:
        assert record["error"] is None
        assert record["choice"] == "A"
        if record["model"] == "gpt":
            assert record["readout"]["probs"] == pytest.approx({"A": 0.7368, "B": 0.2632}, 1e-3)
        else:
            assert record["readout"] is None
    # One preflight request per model, then the trials.
    assert len(scripted_openai.requests) == 2 + len(records)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["models"]["o3"]["mode"] == "choice-only"
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_preflight_failure_stops_the_run_before_any_trial(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rejected = httpx2.Response(400, json={"error": {"message": "logprobs are not supported"}})
    recorder = Recorder(rejected)

    def create(model: ModelRef, settings: OpenAISettings) -> OpenAIChatBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(recorder))
        return OpenAIChatBackend(model, settings, http_client=client)

    monkeypatch.setattr(openai_chat, "create", create)
    config = write_config(run_config('[[models]]\nid = "x"\nspec = "openai:new-model"\n'))
    run_dir = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run_dir)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert errors[0].startswith("mindshift: error: ")
    assert 'readout = "sampling"' in errors[0] and "choice_only = true" in errors[0]
    assert len(recorder.requests) == 1
    calls = run_dir / "calls.jsonl"
    assert not calls.exists() or calls.read_text() == ""
    assert not (run_dir / "manifest.json").exists()


# ---------------------------------------------------------------- the logprob preflight


def probe_failure(recorder: Recorder, **keys: Any) -> LogprobsUnusable:
    with pytest.raises(LogprobsUnusable) as caught:
        preflight(recorder, **keys)
    assert "\n" not in str(caught.value)  # one line, for the CLI to print
    return caught.value


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        # DeepSeek's placeholders: 0 for the sampled token, -9999 for every other.
        ([("A", 0.0), ("B", -9999.0), ("C", -9999.0)], "placeholders"),
        ([("A", -1.5), ("B", -1.5), ("The", -1.5)], "all equal"),
        ([("A", 0.5), ("B", -2.0)], "not log-probabilities"),
    ],
)
def test_preflight_stops_coarse_or_sentinel_logprobs(
    top: list[tuple[str, float]], expected: str
) -> None:
    failure = probe_failure(Recorder(ok(completion([("A", top[0][1], top)]))))
    assert expected in failure.reason
    assert failure.fix.startswith('readout = "sampling"')


def test_preflight_stops_when_no_label_is_among_the_top_tokens() -> None:
    top = [("Let", math.log(0.6)), ("First", math.log(0.3)), ("The", math.log(0.05))]
    failure = probe_failure(Recorder(ok(completion([("Let", math.log(0.6), top)]))))
    assert failure.reason.startswith("neither A nor B is among the top tokens")
    assert "'Let'" in str(failure)


def test_preflight_names_reasoning_effort_none_for_the_gpt5_family() -> None:
    said = "logprobs are only supported with reasoning_effort 'none' for this model"
    refused = httpx2.Response(400, json={"error": {"message": said}})
    failure = probe_failure(Recorder(refused), spec="openai:gpt-5.2", reasoning_effort="low")
    assert failure.fix.startswith('reasoning_effort = "none"')
    assert said in failure.reason
    # The same refusal worded without "reasoning": a gpt-5.1-or-later name still says it.
    terse = httpx2.Response(400, json={"error": {"message": "Unsupported parameter: 'logprobs'"}})
    failure = probe_failure(Recorder(terse), spec="openai:gpt-5.1")
    assert failure.fix.startswith('reasoning_effort = "none"')
    # o3 cannot turn its reasoning off: another readout is the fix.
    failure = probe_failure(Recorder(terse), spec="openai:o3")
    assert failure.fix.startswith('readout = "sampling"')


def test_preflight_of_a_model_that_cannot_turn_reasoning_off() -> None:
    said = "Unsupported value: 'reasoning_effort' does not support 'none' with this model."
    refused = httpx2.Response(400, json={"error": {"message": said}})
    recorder = Recorder(refused)
    failure = probe_failure(recorder, spec="openai:gpt-5", reasoning_effort="none")
    assert failure.fix.startswith('readout = "sampling"')
    assert recorder.json()["reasoning_effort"] == "none"


def test_check_logprobs_asks_for_them_whatever_the_mode_and_only_once() -> None:
    recorder = Recorder(ok(completion([("A", math.log(0.97), PROBE_TOP)])))
    backend = make_backend(recorder, choice_only=True)

    async def go() -> None:
        try:
            await backend.check_logprobs()
            await backend.check_logprobs()
        finally:
            await backend.aclose()

    asyncio.run(go())
    assert len(recorder.requests) == 1
    assert recorder.json()["logprobs"] is True and recorder.json()["top_logprobs"] == 20


def test_a_wrong_key_in_the_logprob_check_is_no_logprob_problem() -> None:
    denied = httpx2.Response(401, json={"error": {"message": "Incorrect API key"}})
    with pytest.raises(UserError, match="Incorrect API key") as caught:
        preflight(Recorder(denied))
    assert not isinstance(caught.value, LogprobsUnusable)


# ---------------------------------------------------------------- free-text replies


def reply_request(n: int = 3, temperature: float = 0.7, **fields: Any) -> ReplyRequest:
    return ReplyRequest(
        trial_id="t1",
        stage=1,
        messages=(
            Message("system", "You are careful."),
            Message("user", "Which city is further north?\nA. Oslo\nB. Rome\nAnswer A or B."),
        ),
        labels=("A", "B"),
        temperature=temperature,
        seed=42,
        asked=Asked("answer"),
        n=n,
        **fields,
    )


def replies_body(
    texts: list[str | None],
    reasons: list[str] | None = None,
    *,
    usage: dict[str, Any] | None = None,
    order: list[int] | None = None,
) -> dict[str, Any]:
    """A chat completion with one choice per text (None: no content), listed in `order`."""
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": (reasons or ["stop"] * len(texts))[index],
        }
        for index, text in enumerate(texts)
    ]
    listed = [choices[i] for i in order] if order is not None else choices
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": listed,
        "usage": usage or {"prompt_tokens": 40, "completion_tokens": 3 * len(texts)},
    }


def replies(backend: OpenAIChatBackend, *requests: ReplyRequest) -> list[ReplyResponse]:
    async def go() -> list[ReplyResponse]:
        try:
            return await backend.reply(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_replies_come_from_one_request_with_n_in_their_order() -> None:
    recorder = Recorder(ok(replies_body(["A", "B", "**A**"], order=[2, 0, 1])))
    backend = make_backend(recorder)
    assert backend.capabilities.replies and backend.capabilities.reply_n
    (response,) = replies(backend, reply_request(n=3))
    assert len(recorder.requests) == 1
    assert recorder.json() == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are careful."},
            {
                "role": "user",
                "content": "Which city is further north?\nA. Oslo\nB. Rome\nAnswer A or B.",
            },
        ],
        "max_completion_tokens": 64,
        "seed": 42,
        "n": 3,
        "temperature": 0.7,
    }
    assert response.error is None
    assert response.texts == ("A", "B", "**A**")
    assert response.raw["request"] == recorder.json()
    assert response.usage.input_tokens == 40 and response.usage.output_tokens == 9
    assert KEY not in json.dumps(response.raw)


def test_a_reply_takes_the_readouts_budget_and_the_entrys_max_tokens() -> None:
    recorder = Recorder(ok(replies_body(["A"])))
    replies(make_backend(recorder), reply_request(n=1, max_tokens=200))
    assert recorder.json()["max_completion_tokens"] == 200
    replies(make_backend(recorder, max_tokens=300), reply_request(n=1, max_tokens=200))
    assert recorder.json()["max_completion_tokens"] == 300


def test_an_empty_reply_is_an_empty_text_unless_all_are_empty() -> None:
    recorder = Recorder(
        ok(replies_body(["A", None, ""], ["stop", "content_filter", "length"])),
        ok(replies_body([None, ""], ["content_filter", "length"])),
        ok(replies_body(["B"])),
    )
    first, second, short = replies(
        make_backend(recorder), reply_request(n=3), reply_request(n=2), reply_request(n=2)
    )
    assert first.error is None and first.texts == ("A", "", "")
    assert second.texts == ()
    assert second.error == "every reply was empty (finish_reason 'content_filter', 'length')"
    assert second.transient is None
    # Fewer replies than asked for: the missing ones are empty samples.
    assert short.texts == ("B", "")


def test_reply_failures_map_as_answers_do() -> None:
    limited = httpx2.Response(
        429, headers={"retry-after-ms": "1500"}, json={"error": {"message": "slow down"}}
    )
    (response,) = replies(make_backend(Recorder(limited)), reply_request())
    assert response.error == "HTTP 429: slow down"
    assert response.transient == Transient(rate_limited=True, retry_after_s=1.5)
    assert response.texts == ()
    bad = httpx2.Response(400, json={"error": {"message": "context too long"}})
    (response,) = replies(make_backend(Recorder(bad)), reply_request())
    assert response.error == "HTTP 400: context too long" and response.transient is None
    cut = httpx2.Response(200, text='{"id": "chatcmpl-1", "choi')
    (response,) = replies(make_backend(Recorder(cut)), reply_request())
    assert response.transient == Transient() and "malformed JSON" in (response.error or "")
    (response,) = replies(make_backend(Recorder(ok({"id": "x"}))), reply_request())
    assert response.error is not None and "no choices" in response.error
    denied = httpx2.Response(401, json={"error": {"message": "bad key"}})
    with pytest.raises(UserError, match="HTTP 401"):
        replies(make_backend(Recorder(denied)), reply_request())


def test_a_reasoning_model_replies_with_room_to_think_and_its_reasoning_priced() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 1500,
        "completion_tokens_details": {"reasoning_tokens": 1400},
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    recorder = Recorder(ok(replies_body(["A", "B", "A", "A", "A"], usage=usage)))
    # No choice_only: a readout without logprobs runs a reasoning model as it is.
    backend = make_backend(recorder, spec="openai:o3", reasoning_effort="low")
    (response,) = replies(backend, reply_request(n=5, temperature=1.0))
    body = recorder.json()
    assert body["max_completion_tokens"] == 4096
    assert "temperature" not in body  # o-series models take only their default, 1
    assert body["reasoning_effort"] == "low" and body["n"] == 5
    assert "logprobs" not in body
    assert response.texts == ("A", "B", "A", "A", "A")
    assert response.usage == Usage(input_tokens=100, output_tokens=1500, reasoning_tokens=1400)
    table = load_price_table(environ={})
    o3 = table.models["openai:o3*"]
    expected = (100 * o3.input + 1500 * o3.output) / 1_000_000
    assert table.cost("openai:o3", response.usage) == pytest.approx(expected)
    # Another temperature is sent, for the API to refuse it.
    replies(make_backend(recorder, spec="openai:o3"), reply_request(temperature=0.5))
    assert recorder.json()["temperature"] == 0.5


def test_a_gpt5_without_reasoning_replies_like_a_chat_model() -> None:
    recorder = Recorder(ok(replies_body(["A"])))
    backend = make_backend(recorder, spec="openai:gpt-5.1", reasoning_effort="none")
    replies(backend, reply_request(n=1, temperature=0.3))
    body = recorder.json()
    assert (body["max_completion_tokens"], body["temperature"]) == (64, 0.3)
    assert body["reasoning_effort"] == "none"
