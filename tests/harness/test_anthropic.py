"""`anthropic:` through a scripted API (`httpx2.MockTransport` under the `anthropic` SDK):
request bodies, choice-only answers, free-text replies with n samples, prompt caching,
usage, errors, the preflight, the config's checks, the Message Batches API, and whole runs
through the CLI (with `--batch`, a kill and a resume). No test here touches the network but
the last, which is marked `live_api` and skips without ANTHROPIC_API_KEY."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from mindshift.cli import main
from mindshift.harness.batch_api import BatchError
from mindshift.harness.batch_log import BatchLog
from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models import anthropic_batch, anthropic_messages
from mindshift.harness.models.anthropic_batch import AnthropicBatch, token_tag
from mindshift.harness.models.anthropic_messages import AnthropicBackend
from mindshift.harness.models.anthropic_settings import CAPABILITIES, AnthropicSettings
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.provider import entry_settings, model_ref
from mindshift.harness.models.registry import PROVIDERS, create_backend, validate_model
from mindshift.harness.pricing import load_price_table
from mindshift.harness.types import (
    Asked,
    ChoiceRequest,
    ChoiceResponse,
    Message,
    Prompt,
    ReplyRequest,
    ReplyResponse,
    Transient,
)
from tests.harness.anthropic_fakes import FakeAnthropic, error, message

KEY = "sk-ant-test-not-a-real-key-5678"
ENV = {"ANTHROPIC_API_KEY": KEY}
SPEC = "anthropic:claude-sonnet-4-5"
Handler = Callable[[httpx2.Request], httpx2.Response]
T = TypeVar("T")


class Recorder:
    """A MockTransport handler that answers from a list (the last answer repeats) and keeps
    the requests."""

    def __init__(self, *answers: httpx2.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request) if callable(answer) else answer

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def ok(text: str, **keys: Any) -> httpx2.Response:
    return httpx2.Response(200, json=message(text, **keys))


def section(**keys: Any) -> ModelSection:
    return ModelSection(id="m", spec=keys.pop("spec", SPEC), **keys)


def make_backend(handler: Handler, **keys: Any) -> AnthropicBackend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    model = section(**keys)
    settings = entry_settings(model, AnthropicSettings)
    return AnthropicBackend(model_ref(model), settings, http_client=client, environ=ENV)


def run_async(backend: AnthropicBackend, step: Coroutine[Any, Any, T]) -> T:
    async def go() -> T:
        try:
            return await step
        finally:
            await backend.aclose()

    return asyncio.run(go())


PROMPT = Prompt(
    messages=(
        Message("system", "You are careful."),
        Message("user", "Which city is further north?\nA. Oslo\nB. Rome"),
    ),
    answer_prefix="My answer is:",
    labels=("A", "B"),
)


def choice(temperature: float = 1.0, trial: str = "t1", stage: int = 1) -> ChoiceRequest:
    return ChoiceRequest(trial, stage, PROMPT, temperature, seed=123)


def ask_reply(
    n: int = 1,
    *,
    messages: tuple[Message, ...] = PROMPT.messages,
    seed: int = 77,
    max_tokens: int | None = None,
    temperature: float = 0.7,
) -> ReplyRequest:
    return ReplyRequest(
        trial_id="t1",
        stage=1,
        messages=messages,
        labels=("A", "B"),
        temperature=temperature,
        seed=seed,
        asked=Asked("answer"),
        n=n,
        max_tokens=max_tokens,
    )


def answer(handler: Handler, request: ChoiceRequest | None = None, **keys: Any) -> ChoiceResponse:
    backend = make_backend(handler, choice_only=True, **keys)
    return run_async(backend, backend.answer([request or choice()]))[0]


def reply(handler: Handler, request: ReplyRequest, **keys: Any) -> ReplyResponse:
    backend = make_backend(handler, readout="sampling", **keys)
    return run_async(backend, backend.reply([request]))[0]


# ---------------------------------------------------------------- choice-only answers


def test_choice_only_answer_is_parsed_from_the_reply_and_the_exact_body_is_stored() -> None:
    recorder = Recorder(ok("**B**"))
    response = answer(recorder, choice(temperature=0.3))
    assert response.error is None
    assert response.choice == "B" and response.readout is None
    sent = recorder.json()
    assert sent == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "You are careful.",
        "messages": [
            {
                "role": "user",
                "content": "Which city is further north?\nA. Oslo\nB. Rome\n\n"
                "Reply with only the label of your answer: A or B.",
            }
        ],
        "temperature": 0.3,
    }
    assert response.raw["request"] == sent
    assert response.raw["response"]["content"][0]["text"] == "**B**"
    # The key travels in a header only: never in what the record keeps.
    assert any(KEY in value for value in recorder.requests[0].headers.values())
    assert KEY not in json.dumps(response.raw)
    assert "seed" not in sent  # the Messages API takes none


def test_a_reply_without_an_option_label_is_a_failure_with_its_text() -> None:
    response = answer(Recorder(ok("I cannot tell.")))
    assert response.choice is None and response.transient is None
    assert response.error == "no option label in the reply 'I cannot tell.'"


def test_a_trailing_assistant_message_is_sent_as_a_prefill_without_trailing_space() -> None:
    recorder = Recorder(ok(" A"))
    messages = (*PROMPT.messages, Message("assistant", "My answer is: "))
    response = reply(recorder, ask_reply(messages=messages))
    assert response.texts == (" A",)
    assert recorder.json()["messages"][-1] == {"role": "assistant", "content": "My answer is:"}


# ---------------------------------------------------------------- replies


def test_a_reply_of_n_samples_is_n_concurrent_requests_each_text_kept() -> None:
    texts = iter(["A", "B", "A"])
    recorder = Recorder(lambda request: ok(next(texts)))
    response = reply(recorder, ask_reply(n=3))
    assert response.error is None
    # Concurrent requests reach the server in no fixed order (on Python 3.13 now and then
    # not in the order sent): every text is kept, in whichever order they were answered.
    assert sorted(response.texts) == ["A", "A", "B"]
    assert len(recorder.requests) == 3
    bodies = [json.loads(request.content) for request in recorder.requests]
    assert bodies[0] == bodies[1] == bodies[2]  # no seed: the same request, drawn thrice
    assert "n" not in bodies[0] and "seed" not in bodies[0]
    assert bodies[0]["temperature"] == 0.7 and bodies[0]["max_tokens"] == 64
    assert "system" in bodies[0] and bodies[0]["messages"][0]["role"] == "user"
    assert response.raw["request"] == bodies[0]
    assert len(response.raw["responses"]) == 3
    assert response.usage.input_tokens == 3 * 40 and response.usage.output_tokens == 3


def test_a_reply_uses_the_readouts_budget_raised_to_the_entrys_max_tokens() -> None:
    recorder = Recorder(ok("A"))
    reply(recorder, ask_reply(max_tokens=16))
    assert recorder.json()["max_tokens"] == 16
    reply(recorder, ask_reply(max_tokens=16), max_tokens=200)
    assert recorder.json()["max_tokens"] == 200


def test_an_empty_sample_is_kept_and_only_all_empty_replies_fail() -> None:
    texts = iter(["A", "", "B"])
    response = reply(Recorder(lambda request: ok(next(texts))), ask_reply(n=3))
    assert response.error is None and sorted(response.texts) == ["", "A", "B"]
    empty = reply(Recorder(ok("", stop_reason="max_tokens")), ask_reply(n=2))
    assert empty.texts == () and empty.transient is None
    assert empty.error is not None and "'max_tokens'" in empty.error
    assert empty.usage.output_tokens == 2  # both were billed


def test_one_failed_sample_fails_the_reply_transiently_with_the_usage_of_the_others() -> None:
    answers = iter([ok("A"), error(529, "overloaded_error", "Overloaded"), ok("B")])
    response = reply(Recorder(lambda request: next(answers)), ask_reply(n=3))
    assert response.texts == ()
    assert response.error == "HTTP 529: overloaded_error: Overloaded (1 of 3 requests failed)"
    assert response.transient == Transient(rate_limited=False)
    assert response.usage.input_tokens == 80  # the two answered requests were billed


def test_a_sample_the_api_refused_makes_the_reply_fail_for_good() -> None:
    answers = iter(
        [
            error(429, "rate_limit_error", "slow down", **{"retry-after": "3"}),
            error(400, "invalid_request_error", "prompt is too long"),
        ]
    )
    response = reply(Recorder(lambda request: next(answers)), ask_reply(n=2))
    assert response.transient is None  # the 400 would come back the same
    assert response.error is not None and "2 of 2 requests failed" in response.error


# ---------------------------------------------------------------- errors


def test_429_is_rate_limited_with_the_wait_the_server_asked_for() -> None:
    response = answer(Recorder(error(429, "rate_limit_error", "slow down", **{"retry-after": "7"})))
    assert response.choice is None
    assert response.error == "HTTP 429: rate_limit_error: slow down"
    assert response.transient == Transient(rate_limited=True, retry_after_s=7.0)
    assert response.raw["response"]["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("status", "kind"), [(529, "overloaded_error"), (500, "api_error"), (503, "api_error")]
)
def test_server_errors_and_overload_are_transient(status: int, kind: str) -> None:
    response = answer(Recorder(error(status, kind, "try later")))
    assert response.transient == Transient(rate_limited=False)
    assert response.error == f"HTTP {status}: {kind}: try later"


def test_a_network_error_and_a_body_cut_short_are_transient() -> None:
    def reset(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection reset")

    assert answer(Recorder(reset)).transient == Transient()
    cut = answer(Recorder(httpx2.Response(200, content=b'{"id": "msg_01", "con')))
    assert cut.transient == Transient() and cut.error is not None
    assert cut.error.startswith("malformed JSON")


def test_a_bad_request_is_a_failure_with_the_apis_message() -> None:
    response = answer(Recorder(error(400, "invalid_request_error", "max_tokens: too large")))
    assert response.transient is None
    assert response.error == "HTTP 400: invalid_request_error: max_tokens: too large"


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        (401, "check the key in ANTHROPIC_API_KEY"),
        (403, "this key may not use this model"),
        (404, "check the model name"),
    ],
)
def test_a_rejected_key_or_unknown_model_stops_the_run(status: int, fix: str) -> None:
    with pytest.raises(UserError, match=fix):
        answer(Recorder(error(status, "authentication_error", "no")))
    with pytest.raises(UserError, match=fix):
        reply(Recorder(error(status, "authentication_error", "no")), ask_reply(n=2))


# ---------------------------------------------------------------- usage and caching


def test_usage_counts_cache_reads_and_writes_as_input_and_thinking_as_reasoning() -> None:
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 300,
        "output_tokens": 250,
        "output_tokens_details": {"thinking_tokens": 240},
    }
    response = answer(Recorder(ok("A", usage=usage)))
    assert response.usage.input_tokens == 2312
    assert response.usage.cached_tokens == 2000
    assert response.usage.output_tokens == 250
    assert response.usage.reasoning_tokens == 240
    # Priced as the table says: cache reads at the cached price, thinking as output.
    table = load_price_table(None)
    price = table.price_of("anthropic:claude-sonnet-4-5")
    assert price is not None and price.cached_input is not None
    expected = (312 * price.input + 2000 * price.cached_input + 250 * price.output) / 1e6
    assert table.cost("anthropic:claude-sonnet-4-5", response.usage) == pytest.approx(expected)


LONG_QUESTION = "Context: " + "The city lies on a fjord. " * 160 + "\nA. Oslo\nB. Rome"


def test_a_long_shared_prefix_is_marked_for_caching_on_the_first_user_message() -> None:
    conversation = (
        Message("system", "You are careful."),
        Message("user", LONG_QUESTION),
        Message("assistant", "A"),
        Message("user", "An advisor says B. Your answer?"),
    )
    recorder = Recorder(ok("A"))
    reply(recorder, ask_reply(messages=conversation))
    sent = recorder.json()["messages"]
    assert sent[0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": LONG_QUESTION, "cache_control": {"type": "ephemeral"}}
        ],
    }
    assert sent[1] == {"role": "assistant", "content": "A"}
    assert sent[2] == {"role": "user", "content": "An advisor says B. Your answer?"}
    # Off when the entry says so; never on a prompt too short for any model to cache.
    reply(recorder, ask_reply(messages=conversation), cache_prefix=False)
    assert recorder.json()["messages"][0]["content"] == LONG_QUESTION
    reply(recorder, ask_reply())
    assert "cache_control" not in json.dumps(recorder.json())


def test_thinking_sends_its_budget_no_temperature_and_reads_the_text_only() -> None:
    recorder = Recorder(ok("B", thinking="Rome is at 41.9 N, Oslo at 59.9 N..."))
    response = reply(recorder, ask_reply(temperature=1.0), thinking_budget=2048)
    assert response.texts == ("B",)
    sent = recorder.json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 2048 + 64
    assert "temperature" not in sent
    # A readout asking for another temperature gets a failure, not a refused request.
    refused = reply(recorder, ask_reply(temperature=0.5), thinking_budget=2048)
    assert refused.error == "extended thinking runs only at temperature 1, not 0.5"
    assert len(recorder.requests) == 1


# ---------------------------------------------------------------- preflight and describe


def test_preflight_sends_one_tiny_request_and_notes_the_model_version() -> None:
    recorder = Recorder(ok("A", model="claude-sonnet-4-5-20250929"))
    backend = make_backend(recorder, readout="verbal")
    run_async(backend, backend.preflight())
    assert len(recorder.requests) == 1
    sent = recorder.json()
    assert sent["max_tokens"] == 1 and sent["messages"][0]["role"] == "user"
    facts = backend.describe()
    assert facts["model_version"] == "claude-sonnet-4-5-20250929"
    assert facts["mode"] == "free-text replies" and facts["cache_prefix"] == "true"
    assert "no seed parameter" in facts["sampling"]
    assert KEY not in json.dumps(facts)


@pytest.mark.parametrize(
    ("status", "kind", "fix"),
    [
        (401, "authentication_error", "check the key in ANTHROPIC_API_KEY"),
        (404, "not_found_error", "check the model name"),
        (400, "invalid_request_error", "thinking is not supported"),
    ],
)
def test_a_failed_preflight_stops_the_run_in_one_line(status: int, kind: str, fix: str) -> None:
    text = "thinking is not supported" if status == 400 else "nope"
    backend = make_backend(Recorder(error(status, kind, text)), readout="verbal")
    with pytest.raises(UserError) as stop:
        run_async(backend, backend.preflight())
    line = str(stop.value)
    assert "\n" not in line and fix in line
    assert line.startswith(f"model 'm' ({SPEC}): preflight request failed: HTTP {status}")


# ---------------------------------------------------------------- the config


def refusal(**keys: Any) -> str:
    with pytest.raises(ConfigError) as refused:
        validate_model(section(**keys))
    return str(refused.value)


def test_the_config_checks_readout_temperature_thinking_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert 'readout = "sampling" or "verbal"' in refusal()  # logprobs, the default
    assert "choice_only = true" in refusal()
    validate_model(section(choice_only=True))
    validate_model(section(readout="sampling", samples=5))
    validate_model(section(readout="auto"))
    assert "remove it to use readout = 'verbal'" in refusal(readout="verbal", choice_only=True)
    assert "temperature = 1.0" in refusal(readout="verbal", thinking_budget=2048, temperature=0.5)
    validate_model(section(readout="verbal", thinking_budget=2048))
    assert "above 1" in refusal(readout="verbal", temperature=1.5)
    assert "greater than or equal to 1024" in refusal(readout="verbal", thinking_budget=100)
    assert "did you mean 'max_tokens'" in refusal(readout="verbal", max_token=5)
    assert "'batch_size' cannot be used by anthropic" in refusal(readout="verbal", batch_size=4)
    assert "http" in refusal(readout="verbal", base_url="api.anthropic.com")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert "set the environment variable ANTHROPIC_API_KEY" in refusal(readout="verbal")


def test_the_provider_declares_the_backends_capabilities() -> None:
    provider = PROVIDERS["anthropic"]
    assert provider.capabilities == CAPABILITIES == AnthropicBackend.capabilities
    assert not CAPABILITIES.logprobs and CAPABILITIES.replies and not CAPABILITIES.reply_n
    assert CAPABILITIES.batch and CAPABILITIES.choice_only and CAPABILITIES.prefill


def test_the_registry_builds_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    backend = create_backend(section(readout="sampling", thinking_budget=1024))
    assert isinstance(backend, AnthropicBackend)
    assert backend.settings.thinking_budget == 1024
    asyncio.run(backend.aclose())


# ---------------------------------------------------------------- the Message Batches API


def batch_api(fake: FakeAnthropic, **keys: Any) -> tuple[AnthropicBackend, AnthropicBatch]:
    backend = make_backend(fake, choice_only=True, **keys)
    api = backend.batch_api()
    api.find_poll_s = 0.001
    return backend, api


def test_a_batch_is_submitted_tagged_polled_and_collected_by_custom_id() -> None:
    fake = FakeAnthropic(lambda body: "B")
    fake.polls_to_end = 2
    requests = [choice(trial=f"trial{i:02d}") for i in range(3)]
    fake.errored_custom_ids = {"trial01-1"}
    backend, api = batch_api(fake)

    async def go() -> tuple[str, list[str], list[ChoiceResponse]]:
        prepared = [api.prepare(request) for request in requests]
        batch_id = await api.submit(prepared, "mindshift-token-1")
        states = [(await api.status(batch_id)).state for _ in range(2)]
        return batch_id, states, await api.collect(batch_id, requests)

    batch_id, states, answers = run_async(backend, go())
    assert states == ["in_progress", "ended"]
    lines = fake.batch_requests[batch_id]
    tag = token_tag("mindshift-token-1")
    assert [line["custom_id"] for line in lines] == [f"trial{i:02d}-1-{tag}" for i in range(3)]
    # Each line's params are the body a single call sends, and the record shows it.
    assert lines[0]["params"] == backend.format.answer_body(requests[0])
    assert answers[0].raw["request"] == lines[0]["params"]
    assert [a.choice for a in answers] == ["B", None, "B"]  # results came in reverse order
    assert answers[1].error == "batch error overloaded_error: Overloaded"
    assert answers[0].usage.input_tokens == 40


def test_a_request_the_batch_left_unanswered_is_a_failure() -> None:
    fake = FakeAnthropic()
    backend, api = batch_api(fake)

    async def go() -> list[ChoiceResponse]:
        batch_id = await api.submit([api.prepare(choice(trial="sent"))], "mindshift-t")
        await api.status(batch_id)
        return await api.collect(batch_id, [choice(trial="sent"), choice(trial="never")])

    sent, never = run_async(backend, go())
    assert sent.choice == "A"
    assert never.error == "the batch ended without answering this request"


def test_find_reads_ended_batches_and_waits_for_those_in_progress() -> None:
    fake = FakeAnthropic()
    backend, api = batch_api(fake)

    async def go() -> tuple[str, str | None, str | None, str | None]:
        ended = await api.submit([api.prepare(choice(trial="a"))], "mindshift-ended")
        await api.status(ended)
        running = await api.submit([api.prepare(choice(trial="b"))], "mindshift-running")
        # The running batch shows its requests only once it has ended: find waits for it.
        return (
            running,
            await api.find("mindshift-running"),
            await api.find("mindshift-ended"),
            await api.find("mindshift-never-submitted"),
        )

    running, found_running, found_ended, never = run_async(backend, go())
    assert found_running == running and found_ended == "msgbatch_0000" and never is None


def test_reply_lines_carry_kind_and_seed_and_refuse_n_above_one() -> None:
    fake = FakeAnthropic(lambda body: "A")
    backend, api = batch_api(fake)
    singles = [ask_reply(seed=seed) for seed in (5, 6)]
    many = api.prepare_reply(ask_reply(n=3))
    assert many.line is None and many.failure is not None
    assert many.failure.error is not None and "n = 3" in many.failure.error
    prepared = [api.prepare_reply(request) for request in singles]
    assert [p.line["custom_id"] for p in prepared if p.line] == ["t1-1-a5", "t1-1-a6"]

    async def go() -> list[ReplyResponse]:
        batch_id = await api.submit(prepared, "mindshift-replies")
        await api.status(batch_id)
        return await api.collect_replies(batch_id, singles)

    replies = run_async(backend, go())
    assert [r.texts for r in replies] == [("A",), ("A",)]
    assert replies[0].raw["request"] == backend.format.body(
        singles[0].messages, temperature=0.7, max_tokens=None
    )


def test_batch_api_errors_are_batch_errors_or_stop_the_run() -> None:
    fake = FakeAnthropic()
    fake.status_outage = 1
    backend, api = batch_api(fake)
    with pytest.raises(BatchError) as outage:
        run_async(backend, api.status("msgbatch_0000"))
    assert outage.value.transient and "HTTP 500" in str(outage.value)
    rejected = make_backend(Recorder(error(401, "authentication_error", "bad key")))
    with pytest.raises(UserError, match="batch API: HTTP 401"):
        run_async(rejected, rejected.batch_api().submit([], "mindshift-x"))


# ---------------------------------------------------------------- whole runs through the CLI


class Killed(Exception):
    """Stands for a kill at a chosen moment."""


ITEMS, CONDITIONS = 3, 2


def write_config(path: Path, *model_keys: str) -> Path:
    keys = "".join(f"{key}\n" for key in model_keys)
    path.write_text(
        '[experiment]\nname = "anthropic-run"\nparadigm = "change-of-mind"\nseed = 3\n\n'
        '[paradigm]\nitems = 3\ndisplays = ["shown"]\nadvice = ["opposite"]\n'
        "accuracies = [0.6, 0.9]\n\n"
        f'[[models]]\nid = "claude"\nspec = "{SPEC}"\n{keys}',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    service = FakeAnthropic()
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setattr(anthropic_batch, "FIND_POLL_S", 0.001)

    def create(model: ModelRef, settings: AnthropicSettings) -> AnthropicBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(service))
        return AnthropicBackend(model, settings, http_client=client)

    monkeypatch.setattr(anthropic_messages, "create", create)
    return service


def stored(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    keys = [(r["trial_id"], r["stage"]) for r in records]
    assert len(keys) == len(set(keys)) == ITEMS * (1 + CONDITIONS)  # every call once
    return records


def test_a_batch_run_through_the_cli_stores_every_call(
    fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", "choice_only = true")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--batch", "--batch-poll", "0.001"]) == 0
    records = stored(out)
    assert fake_api.message_calls == 1  # the preflight; every trial went through a batch
    assert len(fake_api.batches) == 2  # a turn-1 wave, then a turn-2 wave
    assert all(r["error"] is None for r in records)
    assert {r["choice"] for r in records} == {"A"}
    # Turn 2 was built from the stored turn-1 answers, collected from the first batch.
    assert {r["request"]["situation"]["initial_choice"] for r in records if r["stage"] == 2} == {
        "A"
    }
    assert {r["batch_id"] for r in records if r["stage"] == 1} == {"msgbatch_0000"}
    assert {r["batch_id"] for r in records if r["stage"] == 2} == {"msgbatch_0001"}
    assert BatchLog(out).open_batches() == []


def test_a_batch_run_killed_after_submitting_resumes_by_finding_its_batch(
    fake_api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.toml", "choice_only = true")
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--batch", "--batch-poll", "0.001"]
    real = BatchLog.submitted

    def killed(self: BatchLog, token: str, batch_id: str) -> None:
        raise Killed  # between the provider's answer and the log's write

    monkeypatch.setattr(BatchLog, "submitted", killed)
    with pytest.raises(ExceptionGroup) as stop:
        main(args)
    assert stop.group_contains(Killed)
    (lost,) = BatchLog(out).open_batches()
    assert lost.batch_id is None and fake_api.batches["msgbatch_0000"]["results_url"] is None

    monkeypatch.setattr(BatchLog, "submitted", real)
    assert main(args) == 0
    stored(out)
    assert len(fake_api.batches) == 2  # the lost batch was found and collected, not resent
    assert all(r["batch_id"] is not None for r in stored(out))


def test_a_sampling_run_through_the_cli_sends_n_requests_per_call_and_resumes(
    fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", 'readout = "sampling"', "samples = 3")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    records = stored(out)
    assert fake_api.message_calls == 1 + 3 * ITEMS * (1 + CONDITIONS)
    assert all(r["readout_method"] == "sampling" for r in records)
    for record in records:
        assert len(record["readout_detail"]["replies"]) == 3  # every sample kept
        assert record["error"] is None and record["readout"]["probs"] is not None
    assert main(["run", str(config), "--out", str(out)]) == 0  # a resume: nothing left
    assert fake_api.message_calls == 2 + 3 * ITEMS * (1 + CONDITIONS)
    stored(out)


def stated(body: dict[str, Any]) -> str:
    """Replies as a model asked for its answer and its confidence would."""
    last = body["messages"][-1]["content"]
    text = last if isinstance(last, str) else last[0]["text"]
    return "Answer: A\nConfidence: 80" if "Confidence:" in text else "A"


def test_a_verbal_batch_run_sends_one_reply_line_per_trial_and_resumes(
    fake_api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_api.replier = stated
    config = write_config(tmp_path / "c.toml", 'readout = "verbal"')
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--batch", "--batch-poll", "0.001"]
    fake_api.status_outage = 100  # the API fails while the first batch runs: the run stops
    assert main(args) == 2
    assert len(fake_api.batches) == 1
    fake_api.status_outage = 0
    assert main(args) == 0
    records = stored(out)
    assert len(fake_api.batches) == 2  # the first batch collected, not submitted again
    assert fake_api.message_calls == 2  # the two preflights
    lines = fake_api.batch_requests["msgbatch_0000"]
    assert len(lines) == ITEMS
    assert all(line["custom_id"].split("-")[2].startswith("s") for line in lines)
    for record in records:
        assert record["error"] is None and record["readout_method"] == "verbal"
        assert record["readout_detail"]["stated"] == pytest.approx(0.8)
        assert record["batch_id"] is not None


def test_the_key_reaches_no_file_log_or_terminal(
    fake_api: FakeAnthropic,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("anthropic", "httpx", "httpx2", "httpcore", "httpcore2", "mindshift"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    fake_api.replier = stated
    out = tmp_path / "run"
    sampled = write_config(tmp_path / "s.toml", 'readout = "sampling"', "samples = 2")
    assert main(["run", str(sampled), "--out", str(out / "sampled")]) == 0
    batched = write_config(tmp_path / "b.toml", 'readout = "verbal"')
    args = ["run", str(batched), "--out", str(out / "batched"), "--batch", "--batch-poll", "0"]
    assert main(args) == 0
    assert main(["cost", str(out / "sampled")]) == 0
    assert fake_api.batches and fake_api.message_calls > 1
    blobs = {str(path): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    captured = capsys.readouterr()
    blobs.update(stdout=captured.out.encode(), stderr=captured.err.encode())
    assert caplog.records, "the SDK's debug logs were not captured"
    blobs["logs"] = caplog.text.encode()
    for where, blob in blobs.items():
        assert KEY.encode() not in blob, f"the key in {where}"
        assert b"authorization" not in blob.lower(), f"an Authorization header in {where}"


# ---------------------------------------------------------------- the real API


@pytest.mark.live_api
@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="ANTHROPIC_API_KEY is not set")
def test_live_anthropic_choice_and_replies(request: pytest.FixtureRequest) -> None:
    """A handful of tiny requests to the real API (`pytest -m live_api`); the model can be
    changed with MINDSHIFT_LIVE_ANTHROPIC_MODEL."""
    if "live_api" not in (request.config.option.markexpr or ""):
        pytest.skip("calls paid APIs: run with -m live_api")
    name = os.environ.get("MINDSHIFT_LIVE_ANTHROPIC_MODEL", "claude-haiku-4-5")
    model = ModelSection.model_validate(
        {"id": "live", "spec": f"anthropic:{name}", "choice_only": True}
    )
    validate_model(model)
    backend = create_backend(model)
    assert isinstance(backend, AnthropicBackend)

    async def go() -> tuple[list[ChoiceResponse], list[ReplyResponse]]:
        await backend.preflight()
        answers = await backend.answer([choice()])
        replies = await backend.reply([ask_reply(n=2)])
        return answers, replies

    answers, replies = run_async(backend, go())
    assert answers[0].error is None, answers[0].error
    assert answers[0].choice == "A" and answers[0].usage.input_tokens > 0
    assert replies[0].error is None and len(replies[0].texts) == 2
    assert KEY not in json.dumps([answers[0].raw, replies[0].raw])
    assert os.environ["ANTHROPIC_API_KEY"] not in json.dumps([answers[0].raw, replies[0].raw])
