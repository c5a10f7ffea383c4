"""`--batch`: OpenAI's Batch API and Gemini's batch mode, scripted with `httpx2.MockTransport`.

Each stage goes out as one wave of batches; batch ids are logged in batches.jsonl, so a run
that stops while a batch is out collects it when restarted instead of paying for it again,
even when it stopped before the batch's id was logged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.harness.batch_api import BatchApi
from mindshift.harness.batch_log import BatchLog
from mindshift.harness.config import parse_config
from mindshift.harness.errors import UserError
from mindshift.harness.experiment import execute, prepare
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.gemini import GeminiBackend
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.openai_chat import OpenAIChatBackend
from mindshift.harness.models.openai_settings import OpenAISettings
from mindshift.harness.runner import RunReport
from mindshift.harness.types import Asked, Message, ReplyRequest, ReplyResponse
from mindshift.paradigms import PARADIGMS
from tests.harness.batch_fakes import FakeGemini, FakeOpenAI, serve_gemini, serve_openai

OPENAI_KEY = "sk-batch-test-key-000111"
GEMINI_KEY = "AIza-batch-test-key-222333"
ITEMS, CONDITIONS = 3, 2


class Killed(Exception):
    """Stands for a kill at a chosen moment."""


def config(spec: str) -> dict[str, Any]:
    return {
        "experiment": {"name": "batch", "paradigm": "change-of-mind", "seed": 2},
        "paradigm": {
            "items": ITEMS,
            "displays": ["shown"],
            "advice": ["opposite"],
            "accuracies": [0.6, 0.9],
        },
        "models": [{"id": "m", "spec": spec}],
    }


def run(spec: str, run_dir: Path) -> RunReport:
    prepared = prepare(parse_config(config(spec)), PARADIGMS)
    return execute(prepared, run_dir, batch=True, batch_poll_s=0.001)


def records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def check_complete(run_dir: Path) -> list[dict[str, Any]]:
    stored = records(run_dir)
    keys = [(r["trial_id"], r["stage"]) for r in stored]
    assert len(keys) == len(set(keys)) == ITEMS * (1 + CONDITIONS)
    return stored


# ---------------------------------------------------------------- OpenAI


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    service = FakeOpenAI()
    serve_openai(monkeypatch, service, OPENAI_KEY)
    return service


def test_openai_batch_waves_store_every_call(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    report = run("openai:gpt-4o", tmp_path)
    stored = check_complete(tmp_path)
    assert report.calls_made["m"] == ITEMS * (1 + CONDITIONS)
    assert fake_openai.chat_calls == 1  # the preflight; every trial went through a batch
    assert len(fake_openai.batches) == 2  # a stage-1 wave, then a stage-2 wave
    by_batch = {r["batch_id"] for r in stored if r["stage"] == 1}
    assert by_batch == {"batch_0"}
    assert {r["batch_id"] for r in stored if r["stage"] == 2} == {"batch_1"}
    assert all(r["error"] is None and r["readout"]["probs"] for r in stored)
    # The batch lines carried the exact bodies single calls send, and the records show them.
    sent = [json.loads(line) for line in fake_openai.files["file-0"].splitlines()]
    assert sent[0]["body"]["logprobs"] is True and sent[0]["body"]["top_logprobs"] == 20
    stage1 = [r for r in stored if r["stage"] == 1]
    assert {json.dumps(r["response"]["request"], sort_keys=True) for r in stage1} == {
        json.dumps(line["body"], sort_keys=True) for line in sent
    }
    # Stage 2 was built from the stored stage-1 answers.
    for record in stored:
        if record["stage"] == 2:
            assert record["request"]["situation"]["initial_choice"] in ("A", "B")
    assert BatchLog(tmp_path).open_batches() == []


def test_a_restart_collects_the_submitted_batch_instead_of_paying_twice(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.status_outage = 100  # the API fails while the first batch runs: the run stops
    with pytest.raises(UserError, match=r"batches\.jsonl"):
        run("openai:gpt-4o", tmp_path)
    assert len(fake_openai.batches) == 1
    (open_batch,) = BatchLog(tmp_path).open_batches()
    assert open_batch.batch_id == "batch_0"

    fake_openai.status_outage = 0
    run("openai:gpt-4o", tmp_path)
    check_complete(tmp_path)
    assert len(fake_openai.batches) == 2  # batch_0 collected, not submitted again


def test_a_batch_whose_id_was_never_logged_is_found_by_its_token(
    fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = BatchLog.submitted

    def crash(self: BatchLog, token: str, batch_id: str) -> None:
        raise Killed  # between the provider's answer and the log's write

    monkeypatch.setattr(BatchLog, "submitted", crash)
    with pytest.raises(ExceptionGroup) as stop:
        run("openai:gpt-4o", tmp_path)
    assert stop.group_contains(Killed)
    assert len(fake_openai.batches) == 1
    (lost,) = BatchLog(tmp_path).open_batches()
    assert lost.batch_id is None

    monkeypatch.setattr(BatchLog, "submitted", real)
    run("openai:gpt-4o", tmp_path)
    check_complete(tmp_path)
    assert len(fake_openai.batches) == 2  # found by its token: not submitted again


def test_failed_and_unanswered_batch_requests_are_failures_that_a_rerun_retries(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.fail_every = 2
    run("openai:gpt-4o", tmp_path)
    stored = check_complete(tmp_path)
    failed = [r for r in stored if r["error"] is not None]
    assert any(r["error"] == "HTTP 500: the model had an error" for r in failed)
    assert any(r["error"].startswith("not run: its stage-1 call failed") for r in failed)

    fake_openai.fail_every = 0
    fake_openai.expire_after = 1  # the retry batch expires after answering one request
    run("openai:gpt-4o", tmp_path)
    stored = check_complete(tmp_path)
    assert any("ended 'expired'" in (r["error"] or "") for r in stored)

    fake_openai.expire_after = None
    run("openai:gpt-4o", tmp_path)
    assert all(r["error"] is None for r in check_complete(tmp_path))


def test_dry_run_prices_batch_calls_at_the_discount(
    fake_openai: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mindshift.cli import main

    path = tmp_path / "c.toml"
    path.write_text(
        '[experiment]\nname = "d"\nparadigm = "change-of-mind"\n\n[paradigm]\nitems = 100\n\n'
        '[[models]]\nid = "m"\nspec = "openai:gpt-4o"\n',
        encoding="utf-8",
    )
    out = tmp_path / "run"
    costs = []
    for flags in ([], ["--batch"]):
        assert main(["run", str(path), "--out", str(out), "--dry-run", *flags]) == 0
        line = capsys.readouterr().out.splitlines()[-1]
        assert line.startswith("3,700 calls to make")
        costs.append(float(line.split("estimated cost ")[1].split()[0].replace(",", "")))
    assert costs[1] == pytest.approx(costs[0] / 2, rel=1e-3)
    assert not out.exists()
    assert fake_openai.chat_calls == 0


# ---------------------------------------------------------------- Gemini


@pytest.fixture
def fake_gemini(monkeypatch: pytest.MonkeyPatch) -> FakeGemini:
    service = FakeGemini()
    serve_gemini(monkeypatch, service, GEMINI_KEY)
    return service


def test_gemini_batch_mode_stores_every_call(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    run("gemini:gemini-2.5-flash", tmp_path)
    stored = check_complete(tmp_path)
    assert fake_gemini.generate_calls == 1  # the preflight
    assert len(fake_gemini.jobs) == 2
    sent = fake_gemini.requests["batches/job0"]
    assert len(sent) == ITEMS
    config_sent = sent[0]["request"]["generationConfig"]
    assert config_sent["responseLogprobs"] is True and config_sent["logprobs"] == 20
    text = sent[0]["request"]["contents"][-1]["parts"][0]["text"]
    assert text.endswith("Reply with only the label of your answer: A or B.")
    failed = [r for r in stored if r["error"] is not None]
    assert any(r["error"] == "batch error 13: internal" for r in failed)
    good = [r for r in stored if r["error"] is None]
    assert good and all(r["choice"] == "B" and r["batch_id"].startswith("batches/") for r in good)
    assert all(r["usage"]["output_tokens"] == 4 for r in good)  # thoughts count as output


def test_a_gemini_job_submitted_before_a_stop_is_collected(
    fake_gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: BatchLog, token: str, batch_id: str) -> None:
        raise Killed

    real = BatchLog.submitted
    monkeypatch.setattr(BatchLog, "submitted", crash)
    with pytest.raises(ExceptionGroup) as stop:
        run("gemini:gemini-2.5-flash", tmp_path)
    assert stop.group_contains(Killed)
    monkeypatch.setattr(BatchLog, "submitted", real)
    run("gemini:gemini-2.5-flash", tmp_path)
    check_complete(tmp_path)
    assert len(fake_gemini.jobs) == 2


# ---------------------------------------------------------------- free-text replies


def reply_requests(*ns: int) -> list[ReplyRequest]:
    return [
        ReplyRequest(
            trial_id=f"t{index}",
            stage=2,
            messages=(Message("user", "Which city is further north? A. Oslo B. Rome"),),
            labels=("A", "B"),
            temperature=1.0,
            seed=100 + index,
            asked=Asked("answer"),
            n=n,
        )
        for index, n in enumerate(ns)
    ]


async def through_a_batch(api: BatchApi, requests: list[ReplyRequest]) -> list[ReplyResponse]:
    """Submit the requests that can be sent as one batch, wait for it, collect it."""
    prepared = [api.prepare_reply(request) for request in requests]
    lines = [p for p in prepared if p.failure is None]
    batch_id = await api.submit(lines, "mindshift-replies")
    while not (await api.status(batch_id)).done:
        pass
    return await api.collect_replies(batch_id, [p.request for p in lines])


def test_openai_batch_lines_carry_reply_requests_with_n() -> None:
    service = FakeOpenAI()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(service))
    backend = OpenAIChatBackend(
        ModelRef("m", "openai:gpt-4o"),
        OpenAISettings(),
        http_client=client,
        environ={"OPENAI_API_KEY": OPENAI_KEY},
    )
    service.fail_every = 3
    requests = reply_requests(4, 1, 2)

    async def go() -> list[ReplyResponse]:
        try:
            api = backend.batch_api()
            prepared = api.prepare_reply(requests[0])
            assert prepared.failure is None and prepared.line is not None
            assert prepared.line["custom_id"] == "t0-2"
            assert prepared.line["body"] == backend.format.reply_body(requests[0])
            return await through_a_batch(api, requests)
        finally:
            await backend.aclose()

    first, second, third = asyncio.run(go())
    sent = [json.loads(line) for line in service.files["file-0"].splitlines()]
    assert [line["body"]["n"] for line in sent] == [4, 1, 2]
    assert all("logprobs" not in line["body"] for line in sent)
    assert first.error is None and first.texts == ("A", "B", "A", "B")
    assert first.usage.input_tokens == 20 and first.usage.output_tokens == 4
    assert first.raw["request"] == sent[0]["body"]
    assert second.texts == ("A",)
    assert third.texts == () and third.error == "HTTP 500: the model had an error"
    assert service.chat_calls == 0


def test_gemini_batch_lines_ask_candidates_and_refuse_more_than_the_model_gives() -> None:
    service = FakeGemini()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(service))
    backend = GeminiBackend(
        ModelRef("g", "gemini:gemini-2.5-flash"),
        GeminiSettings(thinking_budget=0),
        http_client=client,
        environ={"GEMINI_API_KEY": GEMINI_KEY},
    )
    requests = reply_requests(2, 3, 9)

    async def go() -> tuple[list[ReplyResponse], ReplyResponse | None]:
        try:
            api = backend.batch_api()
            too_many = api.prepare_reply(requests[2])
            assert too_many.line is None
            return await through_a_batch(api, requests), too_many.failure
        finally:
            await backend.aclose()

    (first, second), refused = asyncio.run(go())
    assert refused is not None and refused.error is not None
    assert refused.error.startswith("9 replies in one batch request")
    assert "at most 8 candidates" in refused.error
    (job,) = service.requests.values()
    configs = [entry["request"]["generationConfig"] for entry in job]
    assert [config["candidateCount"] for config in configs] == [2, 3]
    assert all("responseLogprobs" not in config for config in configs)
    assert [entry["metadata"]["key"] for entry in job] == ["t0-2", "t1-2"]
    # The fake fails the first request of every job.
    assert first.texts == () and first.error == "batch error 13: internal"
    assert second.error is None and second.texts == ("A", "B", "A")
    assert second.usage.input_tokens == 20
    assert second.raw["request"]["config"]["candidate_count"] == 3
    assert service.generate_calls == 0
