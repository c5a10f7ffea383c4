"""`gemini:` through a scripted API (`httpx2.MockTransport` under google-genai): payloads,
readout edge cases, retries, choice-only mode and the preflight. No network."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.cli import main
from mindshift.harness.concurrency import AdaptiveLimiter
from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models import gemini, gemini_settings
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.gemini import GeminiBackend
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.logprob_check import LogprobsUnusable
from mindshift.harness.models.provider import entry_settings, model_ref
from mindshift.harness.models.registry import PROVIDERS, validate_model
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

KEY = "AIza-test-not-a-real-key-5678"
ENV = {"GEMINI_API_KEY": KEY}
Handler = Callable[[httpx2.Request], httpx2.Response]
Tokens = Sequence[tuple[str, float | None, Sequence[tuple[str, float | None]]]]


def prompt(labels: tuple[str, ...] = ("A", "B")) -> Prompt:
    return Prompt(
        messages=(
            Message("system", "You are careful."),
            Message("user", "Which city is further north?\nA. Oslo\nB. Rome"),
        ),
        answer_prefix="My answer is:",
        labels=labels,
    )


def request(labels: tuple[str, ...] = ("A", "B")) -> ChoiceRequest:
    return ChoiceRequest(
        trial_id="t1", stage=1, prompt=prompt(labels), temperature=1.0, seed=2**40 + 5
    )


def candidate(token: str, logprob: float | None) -> dict[str, Any]:
    # The API leaves out a logProbability of 0.0 (a default value): None models that.
    return {"token": token} if logprob is None else {"token": token, "logProbability": logprob}


def generated(tokens: Tokens, text: str | None = None, **extra: Any) -> dict[str, Any]:
    """A generateContent response whose output is `tokens` (token, logprob, top list)."""
    body: dict[str, Any] = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "".join(t for t, _, _ in tokens) if text is None else text}],
                },
                "finishReason": "STOP",
                "logprobsResult": {
                    "chosenCandidates": [candidate(t, lp) for t, lp, _ in tokens],
                    "topCandidates": [
                        {"candidates": [candidate(t, lp) for t, lp in top]} for _, _, top in tokens
                    ],
                },
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 30,
            "candidatesTokenCount": len(tokens),
            "thoughtsTokenCount": 0,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 30 + len(tokens),
        },
        "modelVersion": "gemini-2.5-flash-001",
    }
    body.update(extra)
    return body


class Recorder:
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


def section(spec: str = "gemini:gemini-2.5-flash", **keys: Any) -> ModelSection:
    return ModelSection(id="g", spec=spec, **keys)


def make_backend(recorder: Recorder, **keys: Any) -> GeminiBackend:
    spec = keys.pop("spec", "gemini:gemini-2.5-flash")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(recorder))
    model = section(spec, **keys)
    settings = entry_settings(model, GeminiSettings)
    return GeminiBackend(model_ref(model), settings, http_client=client, environ=ENV)


def ask(backend: GeminiBackend, *requests: ChoiceRequest) -> list[ChoiceResponse]:
    async def go() -> list[ChoiceResponse]:
        try:
            return await backend.answer(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def one(recorder: Recorder, req: ChoiceRequest | None = None, **keys: Any) -> ChoiceResponse:
    return ask(make_backend(recorder, **keys), req or request())[0]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemini, "backoff_s", lambda attempt: 0.0)


# ---------------------------------------------------------------- the exact request


def test_exact_request_payload_and_no_key_in_the_record() -> None:
    recorder = Recorder(ok(generated([("A", -0.2, [("A", -0.2)])])))
    response = one(recorder, thinking_budget=0)
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert sent.url.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert sent.headers["x-goog-api-key"] == KEY
    body = recorder.json()
    # The SDK passes the nested thinking config through in snake case (the API reads
    # either spelling): compare its value, not its spelling.
    thinking = body["generationConfig"].pop("thinkingConfig")
    assert list(thinking.values()) == [0]
    assert set(thinking) <= {"thinkingBudget", "thinking_budget"}
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {
                        "text": "Which city is further north?\nA. Oslo\nB. Rome\n\n"
                        "Reply with only the label of your answer: A or B."
                    }
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": "You are careful."}], "role": "user"},
        "generationConfig": {
            "temperature": 1.0,
            "candidateCount": 1,
            "maxOutputTokens": 8,
            "responseLogprobs": True,
            "logprobs": 20,
            "seed": (2**40 + 5) % 2**31,
        },
    }
    assert KEY not in json.dumps(response.raw)
    assert response.raw["request"]["config"]["seed"] == (2**40 + 5) % 2**31
    assert response.usage.input_tokens == 30
    assert response.usage.cached_tokens == 4


def test_model_turns_and_default_budget_when_thinking_is_allowed() -> None:
    recorder = Recorder(ok(generated([("B", -0.1, [("B", -0.1)])])))
    conversation = Prompt(
        messages=(
            Message("user", "Q1"),
            Message("assistant", "A"),
            Message("user", "Q2"),
        ),
        answer_prefix="My answer is:",
        labels=("A", "B"),
    )
    one(recorder, ChoiceRequest("t", 1, conversation, 1.0, 1))
    body = recorder.json()
    assert [content["role"] for content in body["contents"]] == ["user", "model", "user"]
    assert "systemInstruction" not in body
    assert body["generationConfig"]["maxOutputTokens"] == 2048
    assert "thinkingConfig" not in body["generationConfig"]


# ---------------------------------------------------------------- readout edge cases


def test_token_variants_are_merged_and_outside_mass_kept() -> None:
    top = [(" A", math.log(0.5)), ("A", math.log(0.2)), ("B", math.log(0.1)), ("\n", -3.0)]
    response = one(Recorder(ok(generated([(" A", math.log(0.5), top)]))))
    assert response.choice == "A"
    readout = response.readout
    assert readout is not None
    assert readout.mass["A"] == pytest.approx(0.7)
    assert readout.probs == pytest.approx({"A": 0.875, "B": 0.125})
    assert readout.outside_mass == pytest.approx(0.2)


@pytest.mark.parametrize("zero", [0.0, None], ids=["explicit", "omitted-by-the-api"])
def test_logprob_of_exactly_zero_is_certainty(zero: float | None) -> None:
    response = one(Recorder(ok(generated([("B", zero, [("B", zero), ("A", -35.0)])]))))
    assert response.error is None
    assert response.choice == "B"
    assert response.readout is not None
    assert response.readout.mass["B"] == 1.0


def test_option_absent_from_top_k_is_censored_with_its_bound() -> None:
    top = [("A", math.log(0.6)), ("The", math.log(0.3)), ("**", math.log(0.02))]
    response = one(Recorder(ok(generated([("A", math.log(0.6), top)]))))
    readout = response.readout
    assert readout is not None
    assert readout.censored
    assert readout.probs is None
    assert readout.mass["B"] is None
    assert readout.upper_bound == {"B": pytest.approx(0.02)}
    assert response.choice == "A"
    assert response.error is None


def test_mass_outside_the_options() -> None:
    top = [("Neither", math.log(0.5)), ("A", math.log(0.3)), ("B", math.log(0.2))]
    response = one(Recorder(ok(generated([("A", math.log(0.3), top)]))))
    assert response.readout is not None
    assert response.readout.outside_mass == pytest.approx(0.5)


def test_answer_read_at_the_first_label_token() -> None:
    tokens: Tokens = [("(", -0.1, [("(", -0.1)]), ("B", -0.2, [("B", -0.2), ("A", -1.8)])]
    response = one(Recorder(ok(generated(tokens))))
    assert response.choice == "B"
    assert response.raw["answer_position"] == 1


def test_multi_token_options_fail_loudly_without_a_call() -> None:
    recorder = Recorder(ok(generated([])))
    response = one(recorder, request(labels=("Oslo", "Rome")))
    assert recorder.requests == []
    assert response.error is not None
    assert "single-character" in response.error


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"candidates": []}, "no candidates"),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "prompt blocked"),
        (generated([], text=""), "empty reply"),
        ({"candidates": [{"content": {"parts": [{"text": "A"}]}}]}, "carries no logprobs"),
        (generated([("The", -0.1, [("The", -0.1)])]), "no generated token is an option label"),
        (generated([("A", -0.1, [("A", 0.7)])]), "invalid log-probability"),
        (
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "A"}]},
                        "logprobsResult": {"chosenCandidates": [], "topCandidates": [{}]},
                    }
                ]
            },
            "malformed",
        ),
        (generated([("A", -0.1, [("A", "x")])]), "invalid response"),  # type: ignore[list-item]
    ],
)
def test_empty_and_malformed_responses_become_error_records(body: Any, expected: str) -> None:
    response = one(Recorder(ok(body)))
    assert response.choice is None
    assert response.readout is None
    assert response.error is not None
    assert expected in response.error


def test_a_body_that_is_no_json_is_an_error_record() -> None:
    response = one(Recorder(httpx2.Response(200, text="<html>proxy error</html>")))
    assert response.error is not None
    assert response.error.startswith("malformed response")


# ---------------------------------------------------------------- errors and retries


def error_body(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def test_a_rate_limit_is_one_attempt_marked_transient_with_its_retry_after() -> None:
    limited = httpx2.Response(
        429, headers={"retry-after": "7"}, json=error_body(429, "quota", "RESOURCE_EXHAUSTED")
    )
    recorder = Recorder(limited)
    response = one(recorder)
    assert len(recorder.requests) == 1  # the SDK does not retry: the runner does
    assert response.attempts == 1
    assert response.error == "HTTP 429: quota"
    assert response.transient == Transient(rate_limited=True, retry_after_s=7.0)


def test_server_error_then_success_through_the_runners_retries() -> None:
    recorder = Recorder(
        httpx2.Response(503, json=error_body(503, "overloaded", "UNAVAILABLE")),
        ok(generated([("A", -0.1, [("A", -0.1), ("B", -2.4)])])),
    )
    backend = make_backend(recorder)
    policy = RetryPolicy(max_retries=2, base_s=0.0)

    async def go() -> list[ChoiceResponse]:
        try:
            return await CallRetrier(backend, policy, AdaptiveLimiter(1)).answer([request()])
        finally:
            await backend.aclose()

    (response,) = asyncio.run(go())
    assert response.error is None
    assert response.attempts == 2
    assert response.attempt_errors == ("HTTP 503: overloaded",)


def test_network_errors_are_transient() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    recorder = Recorder(refuse)
    response = one(recorder)
    assert len(recorder.requests) == 1
    assert response.error is not None
    assert "ConnectError" in response.error
    assert response.transient == Transient()


def test_preflight_retries_a_rate_limit() -> None:
    limited = httpx2.Response(429, json=error_body(429, "quota", "RESOURCE_EXHAUSTED"))
    recorder = Recorder(limited, ok(generated([("A", -0.01, [("A", -0.01)])])))
    preflight(recorder)
    assert len(recorder.requests) == 2


def test_bad_request_is_not_transient() -> None:
    recorder = Recorder(httpx2.Response(400, json=error_body(400, "too long", "INVALID_ARGUMENT")))
    response = one(recorder)
    assert len(recorder.requests) == 1
    assert response.error == "HTTP 400: too long"
    assert response.transient is None


def test_rejected_key_stops_the_run() -> None:
    denied = httpx2.Response(403, json=error_body(403, "API key not valid", "PERMISSION_DENIED"))
    with pytest.raises(UserError, match="API key not valid"):
        one(Recorder(denied))


# ---------------------------------------------------------------- choice-only mode


def test_choice_only_payload_and_parsed_choice() -> None:
    recorder = Recorder(ok({"candidates": [{"content": {"parts": [{"text": "**B**"}]}}]}))
    response = one(recorder, choice_only=True)
    assert response.choice == "B"
    assert response.readout is None
    config = recorder.json()["generationConfig"]
    assert "responseLogprobs" not in config
    assert "logprobs" not in config


# ---------------------------------------------------------------- preflight


def preflight(recorder: Recorder, **keys: Any) -> GeminiBackend:
    backend = make_backend(recorder, **keys)

    async def go() -> None:
        try:
            await backend.preflight()
        finally:
            await backend.aclose()

    asyncio.run(go())
    return backend


def test_preflight_passes_a_model_with_logprobs() -> None:
    recorder = Recorder(ok(generated([("A", -0.01, [("A", -0.01)])])))
    backend = preflight(recorder, thinking_budget=0)
    assert len(recorder.requests) == 1
    assert recorder.json()["generationConfig"]["responseLogprobs"] is True
    assert backend.describe()["model_version"] == "gemini-2.5-flash-001"


def test_preflight_stops_a_model_that_rejects_logprobs() -> None:
    rejected = httpx2.Response(
        400, json=error_body(400, "Logprobs is not enabled for this model", "INVALID_ARGUMENT")
    )
    with pytest.raises(
        LogprobsUnusable, match=r'refuses them.*readout = "sampling".*choice_only = true'
    ) as caught:
        preflight(Recorder(rejected))
    assert isinstance(caught.value, ConfigError)
    assert "Logprobs is not enabled" in caught.value.reason
    assert "\n" not in str(caught.value)


def test_preflight_stops_a_model_that_answers_without_logprobs() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"}]}
    with pytest.raises(LogprobsUnusable, match="carries no logprobs"):
        preflight(Recorder(ok(body)))


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ([("A", None, [("A", None), ("B", -9999.0)])], "placeholders"),
        ([("Let", -0.1, [("Let", -0.1), ("First", -2.5)])], "neither A nor B"),
    ],
)
def test_preflight_stops_unusable_logprobs(tokens: Tokens, expected: str) -> None:
    with pytest.raises(LogprobsUnusable, match=expected) as caught:
        preflight(Recorder(ok(generated(tokens))))
    assert caught.value.fix.startswith('readout = "sampling"')


def test_the_preflight_probe_asks_a_or_b_with_logprobs_whatever_the_mode() -> None:
    top: list[tuple[str, float | None]] = [("A", math.log(0.9)), ("B", math.log(0.08))]
    recorder = Recorder(ok(generated([("A", math.log(0.9), top)])))
    backend = make_backend(recorder, choice_only=True, thinking_budget=0)

    async def go() -> None:
        try:
            await backend.check_logprobs()
            await backend.check_logprobs()  # passed once: nothing sent again
        finally:
            await backend.aclose()

    asyncio.run(go())
    assert len(recorder.requests) == 1
    body = recorder.json()
    assert body["contents"][0]["parts"][0]["text"] == (
        "Which letter comes first in the alphabet: A or B?\n\n"
        "Reply with only the label of your answer: A or B."
    )
    assert body["generationConfig"]["responseLogprobs"] is True
    assert body["generationConfig"]["maxOutputTokens"] == 8


def test_preflight_explains_an_empty_reply_of_a_thinking_model() -> None:
    body = {"candidates": [{"content": {"parts": []}, "finishReason": "MAX_TOKENS"}]}
    with pytest.raises(UserError, match="thinking_budget = 0"):
        preflight(Recorder(ok(body)))


def test_choice_only_preflight_asks_for_no_logprobs() -> None:
    recorder = Recorder(ok({"candidates": [{"content": {"parts": [{"text": "A"}]}}]}))
    preflight(recorder, choice_only=True)
    assert "responseLogprobs" not in recorder.json()["generationConfig"]


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"top_logprobs": 25}, "at most 20"),
        ({"base_url": "http://x/v1"}, "'base_url' cannot be used by gemini"),
        ({"reasoning_effort": "low"}, "'reasoning_effort' cannot be used"),
        ({"choice_only": True, "top_logprobs": 5}, "no use with choice_only"),
    ],
)
def test_unusable_settings_are_config_errors(keys: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        validate_model(section(**keys))


def test_missing_key_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        validate_model(section())
    monkeypatch.setenv("GOOGLE_API_KEY", "x")
    validate_model(section())


def test_the_registry_and_the_backend_share_one_capability_declaration() -> None:
    assert PROVIDERS["gemini"].capabilities is gemini_settings.OFFERED
    assert replace(gemini_settings.CAPABILITIES, choice_only=True) == gemini_settings.OFFERED
    for keys, expected in (
        ({}, gemini_settings.CAPABILITIES),
        ({"choice_only": True}, gemini_settings.CHOICE_ONLY_CAPABILITIES),
    ):
        backend = make_backend(Recorder(ok({})), **keys)
        assert backend.capabilities is expected
        asyncio.run(backend.aclose())


# ---------------------------------------------------------------- a whole run


def test_a_run_through_gemini(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    top = [("B", math.log(0.6)), ("A", math.log(0.4))]
    recorder = Recorder(ok(generated([("B", math.log(0.6), top)])))

    def create(model: ModelRef, settings: GeminiSettings) -> GeminiBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(recorder))
        return GeminiBackend(model, settings, http_client=client)

    monkeypatch.setattr(gemini, "create", create)
    config = write_config(
        '[experiment]\nname = "g"\nparadigm = "change-of-mind"\n\n'
        '[paradigm]\nitems = 2\ndisplays = ["hidden"]\nadvice = ["same"]\naccuracies = [0.8]\n\n'
        '[[models]]\nid = "flash"\nspec = "gemini:gemini-2.5-flash"\nthinking_budget = 0\n'
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    records = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert len(records) == 4
    assert all(r["readout"]["probs"] == pytest.approx({"A": 0.4, "B": 0.6}) for r in records)
    assert len(recorder.requests) == 1 + 4  # the preflight, then the trials
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------- free-text replies


def reply_request(n: int = 3, seed: int = 2**40 + 5, **fields: Any) -> ReplyRequest:
    return ReplyRequest(
        trial_id="t1",
        stage=1,
        messages=(
            Message("system", "You are careful."),
            Message("user", "Which city is further north? A. Oslo B. Rome. Say A or B."),
        ),
        labels=("A", "B"),
        temperature=0.9,
        seed=seed,
        asked=Asked("answer"),
        n=n,
        **fields,
    )


def candidates(texts: list[str | None], *, thoughts: int = 0, **extra: Any) -> dict[str, Any]:
    """A response with one candidate per text (None: blocked, no content), listed last first."""
    listed = []
    for index, text in enumerate(texts):
        entry: dict[str, Any] = {"finishReason": "STOP" if text is not None else "SAFETY"}
        if text is not None:
            entry["content"] = {"role": "model", "parts": [{"text": text}]}
        if index:  # the API leaves out an index of 0
            entry["index"] = index
        listed.append(entry)
    return {
        "candidates": listed[::-1],
        "usageMetadata": {
            "promptTokenCount": 30,
            "candidatesTokenCount": 2 * len(texts),
            "thoughtsTokenCount": thoughts,
            "totalTokenCount": 30 + 2 * len(texts) + thoughts,
        },
        "modelVersion": "gemini-2.5-flash-001",
        **extra,
    }


def by_seed(request: httpx2.Request) -> httpx2.Response:
    """Each candidate says which reply it is: `s<seed>c<candidate>`."""
    config = json.loads(request.content)["generationConfig"]
    count = config.get("candidateCount", 1)
    return ok(candidates([f"s{config['seed']}c{k}" for k in range(count)]))


def replies(backend: GeminiBackend, *requests: ReplyRequest) -> list[ReplyResponse]:
    async def go() -> list[ReplyResponse]:
        try:
            return await backend.reply(list(requests))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_replies_are_candidates_of_one_request_in_their_order() -> None:
    recorder = Recorder(ok(candidates(["A", "B", "A"], thoughts=40)))
    backend = make_backend(recorder)
    assert backend.capabilities.replies and backend.capabilities.reply_n
    (response,) = replies(backend, reply_request(n=3))
    assert len(recorder.requests) == 1
    body = recorder.json()
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "Which city is further north? A. Oslo B. Rome. Say A or B."}],
        }
    ]
    assert body["systemInstruction"]["parts"] == [{"text": "You are careful."}]
    assert body["generationConfig"] == {
        "temperature": 0.9,
        "candidateCount": 3,
        "maxOutputTokens": 2048,  # the model may think: its thoughts count against it
        "seed": (2**40 + 5) % 2**31,
    }
    assert response.error is None
    assert response.texts == ("A", "B", "A")
    # Thoughts are output tokens, and recorded as reasoning.
    assert response.usage == Usage(input_tokens=30, output_tokens=46, reasoning_tokens=40)
    assert response.raw["request"]["config"]["candidate_count"] == 3
    assert KEY not in json.dumps(response.raw)


def test_more_replies_than_candidates_go_out_as_requests_seeded_from_the_call() -> None:
    recorder = Recorder(by_seed)
    (response,) = replies(make_backend(recorder, thinking_budget=0), reply_request(n=20, seed=7))
    configs = sorted(
        (recorder.json(i)["generationConfig"] for i in range(3)), key=lambda c: c["seed"]
    )
    assert [(c["seed"], c["candidateCount"]) for c in configs] == [(7, 8), (15, 8), (23, 4)]
    assert configs[0]["maxOutputTokens"] == 64  # thinking off: a short reply's budget
    expected = [
        f"s{7 + start}c{k}" for start, count in ((0, 8), (8, 8), (16, 4)) for k in range(count)
    ]
    assert response.texts == tuple(expected)
    assert response.usage.input_tokens == 3 * 30  # three requests, each billed its prompt
    assert len(response.raw["requests"]) == len(response.raw["responses"]) == 3


def test_a_model_of_one_candidate_is_asked_once_per_reply() -> None:
    recorder = Recorder(by_seed)
    (response,) = replies(make_backend(recorder, max_candidates=1), reply_request(n=3, seed=7))
    assert len(recorder.requests) == 3
    assert response.texts == ("s7c0", "s8c0", "s9c0")


def test_a_model_that_refuses_several_candidates_is_asked_one_at_a_time() -> None:
    refusal = httpx2.Response(
        400, json=error_body(400, "Multiple candidates is not enabled", "INVALID_ARGUMENT")
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        config = json.loads(request.content)["generationConfig"]
        return refusal if config.get("candidateCount", 1) > 1 else by_seed(request)

    recorder = Recorder(handler)
    backend = make_backend(recorder)
    first, second = replies(backend, reply_request(n=2, seed=3), reply_request(n=2, seed=5))
    assert first.texts == ("s3c0", "s4c0") and second.texts == ("s5c0", "s6c0")
    # Each call learnt it at most once: two refusals at most, then singles only.
    counts = [
        json.loads(r.content)["generationConfig"]["candidateCount"] for r in recorder.requests
    ]
    assert counts.count(2) <= 2 and counts.count(1) == 4


def test_a_blocked_candidate_is_an_empty_text_unless_all_are() -> None:
    recorder = Recorder(
        ok(candidates(["B", None])),
        ok(candidates([None, None])),
        ok({"promptFeedback": {"blockReason": "SAFETY"}}),
    )
    backend = make_backend(recorder)

    async def go() -> list[ReplyResponse]:
        try:
            return [(await backend.reply([reply_request(n=2)]))[0] for _ in range(3)]
        finally:
            await backend.aclose()

    partly, blocked, prompt_blocked = asyncio.run(go())
    assert partly.error is None and partly.texts == ("B", "")
    assert blocked.texts == () and blocked.error == "every reply was empty (finish_reason 'SAFETY')"
    assert prompt_blocked.error is not None and "prompt blocked: SAFETY" in prompt_blocked.error


def test_reply_failures_map_as_answers_do() -> None:
    limited = httpx2.Response(
        429, headers={"retry-after": "7"}, json=error_body(429, "quota", "RESOURCE_EXHAUSTED")
    )
    (response,) = replies(make_backend(Recorder(limited)), reply_request(n=2))
    assert response.error == "HTTP 429: quota"
    assert response.transient == Transient(rate_limited=True, retry_after_s=7.0)
    bad = httpx2.Response(400, json=error_body(400, "too long", "INVALID_ARGUMENT"))
    (response,) = replies(make_backend(Recorder(bad)), reply_request(n=2))
    assert response.error == "HTTP 400: too long" and response.transient is None

    # One of several requests failing fails the call; the others' usage is still counted.
    def half(request: httpx2.Request) -> httpx2.Response:
        seed = json.loads(request.content)["generationConfig"]["seed"]
        return limited if seed == 1 else by_seed(request)

    (response,) = replies(
        make_backend(Recorder(half), max_candidates=1), reply_request(n=2, seed=0)
    )
    assert response.error == "HTTP 429: quota" and response.transient is not None
    assert response.usage.input_tokens == 30
    denied = httpx2.Response(403, json=error_body(403, "API key not valid", "PERMISSION_DENIED"))
    with pytest.raises(UserError, match="API key not valid"):
        replies(make_backend(Recorder(denied)), reply_request())


def test_a_model_without_logprobs_runs_replies() -> None:
    """gemini-2.5-pro answers "Logprobs is not enabled": the check says so in one line, and
    the same backend then gives free-text replies (which ask for no logprobs)."""
    not_enabled = httpx2.Response(
        400,
        json=error_body(
            400, "Logprobs is not enabled for models/gemini-2.5-pro", "INVALID_ARGUMENT"
        ),
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        config = json.loads(request.content)["generationConfig"]
        return not_enabled if config.get("responseLogprobs") else by_seed(request)

    recorder = Recorder(handler)
    backend = make_backend(recorder, spec="gemini:gemini-2.5-pro")

    async def go() -> list[ReplyResponse]:
        try:
            with pytest.raises(LogprobsUnusable, match="Logprobs is not enabled"):
                await backend.check_logprobs()
            return await backend.reply([reply_request(n=4, seed=10)])
        finally:
            await backend.aclose()

    (response,) = asyncio.run(go())
    assert response.error is None
    assert response.texts == ("s10c0", "s10c1", "s10c2", "s10c3")
    assert len(recorder.requests) == 2
