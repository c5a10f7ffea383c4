"""`mindshift run --batch` on models that return no logprobs, killed and resumed: an OpenAI
reasoning model (`openai:o4-mini`) under `sampling`, and a Gemini model that answers
"Logprobs is not enabled" (`gemini:gemini-2.5-flash`) under `verbal` and `sampling`.

Each run goes through the CLI against the providers' batch endpoints scripted with
`httpx2.MockTransport` (`tests.harness.batch_fakes`, answering as these models do: no
logprobs, hidden reasoning counted in the usage), is stopped at a chosen moment, and is run
again: every call ends up stored exactly once, no batch is submitted twice, the records say
which readout read them and carry the reasoning tokens, and `mindshift cost` prices those
tokens as output. The Anthropic counterpart is in `tests/harness/test_anthropic.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mindshift.cli import main
from mindshift.harness.batch_log import BatchLog
from tests.harness import batch_fakes
from tests.harness.batch_fakes import (
    FakeGemini,
    FakeOpenAI,
    reply_text,
    serve_gemini,
    serve_openai,
)

OPENAI_KEY = "sk-e2e-no-logprobs-key-0101"
GEMINI_KEY = "AIza-e2e-no-logprobs-key-0202"
ITEMS, CONDITIONS = 3, 2
CALLS = ITEMS * (1 + CONDITIONS)
SAMPLES = 4
PROMPT_TOKENS = 40
OPENAI_REASONING = 96
"""Hidden reasoning tokens per OpenAI request (inside `completion_tokens`, as OpenAI counts)."""
GEMINI_THOUGHTS = 30
"""Thought tokens per Gemini request (apart from `candidatesTokenCount`, as Gemini counts)."""
INPUT_PRICE, OUTPUT_PRICE, BATCH_DISCOUNT = 2.0, 1000.0, 0.5
"""The test's own price table, per million tokens (output dear, so that reasoning shows)."""


class Killed(Exception):
    """Stands for a kill at a chosen moment."""


def stated_or_label(last_message: str, k: int) -> str:
    """What a model replies: an answer and a stated confidence when asked for both (verbal),
    else a bare label (reply k of a sampled request: A when k is even, B when it is odd)."""
    return "Answer: A\nConfidence: 80" if "Confidence:" in last_message else reply_text(k)


# ---------------------------------------------------------------- OpenAI, a reasoning model


def o4_mini_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A reasoning model's chat completion: `n` choices, no logprobs, and hidden reasoning
    counted in `completion_tokens` and in its details."""
    assert "logprobs" not in body and "top_logprobs" not in body, "a reasoning model was asked"
    assert "temperature" not in body  # reasoning models take only their default
    assert body["reasoning_effort"] == "low"
    n = body.get("n", 1)
    last = body["messages"][-1]["content"]
    return {
        "id": "chatcmpl-o4",
        "object": "chat.completion",
        "created": 0,
        "model": "o4-mini-2025-04-16",
        "choices": [
            {
                "index": k,
                "message": {"role": "assistant", "content": stated_or_label(last, k)},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for k in range(n)
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": n + OPENAI_REASONING,
            "total_tokens": PROMPT_TOKENS + n + OPENAI_REASONING,
            "completion_tokens_details": {"reasoning_tokens": OPENAI_REASONING},
        },
    }


class FakeO4Mini(FakeOpenAI):
    """The Files and Batches endpoints answering as o4-mini does (see `o4_mini_answer`); its
    chat completions (the preflight) too."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/chat/completions"):
            self.chat_calls += 1
            return httpx2.Response(200, json=o4_mini_answer(json.loads(request.content)))
        return super().__call__(request)


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> FakeO4Mini:
    service = FakeO4Mini()
    # The batch fake answers each line through this function: answer as o4-mini does.
    monkeypatch.setattr(batch_fakes, "openai_answer", o4_mini_answer)
    serve_openai(monkeypatch, service, OPENAI_KEY)
    return service


# ---------------------------------------------------------------- Gemini without logprobs


def gemini_replies(request: dict[str, Any]) -> dict[str, Any]:
    """gemini-2.5-flash's answer to a request without logprobs: `candidateCount` candidates,
    a thought summary before the text (not the answer), thoughts counted apart."""
    config = request.get("generationConfig") or {}
    assert "responseLogprobs" not in config and "logprobs" not in config
    count = config.get("candidateCount", 1)
    last = request["contents"][-1]["parts"][0]["text"]
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Weighing the options.", "thought": True},
                        {"text": stated_or_label(last, k)},
                    ],
                },
                "finishReason": "STOP",
                "index": k,
            }
            for k in range(count)
        ],
        "usageMetadata": {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": count,
            "thoughtsTokenCount": GEMINI_THOUGHTS,
            "totalTokenCount": PROMPT_TOKENS + count + GEMINI_THOUGHTS,
        },
        "modelVersion": "gemini-2.5-flash-001",
    }


class FakeFlash(FakeGemini):
    """Gemini's batch mode and generateContent answering as gemini-2.5-flash does: a request
    for logprobs is refused ("Logprobs is not enabled"), any other answered with
    `gemini_replies`; every request of a job answered (no injected failures)."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith(":generateContent"):
            self.generate_calls += 1
            body = json.loads(request.content)
            if (body.get("generationConfig") or {}).get("responseLogprobs"):
                message = "Logprobs is not enabled for models/gemini-2.5-flash"
                error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
                return httpx2.Response(400, json={"error": error})
            return httpx2.Response(200, json=gemini_replies(body))
        if request.method == "GET" and "/batches/" in path:
            job = self.jobs["batches/" + path.rsplit("/", 1)[1]]
            if job["metadata"]["state"] == "BATCH_STATE_RUNNING":
                answers = [
                    {"response": gemini_replies(entry["request"]), "metadata": entry["metadata"]}
                    for entry in self.requests[job["name"]]
                ]
                job["metadata"]["state"] = "BATCH_STATE_SUCCEEDED"
                job["metadata"]["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
                job["done"] = True
                return httpx2.Response(200, json=job)
        return super().__call__(request)


@pytest.fixture
def fake_gemini(monkeypatch: pytest.MonkeyPatch) -> FakeFlash:
    service = FakeFlash()
    serve_gemini(monkeypatch, service, GEMINI_KEY)
    return service


# ---------------------------------------------------------------- the runs


def write_config(directory: Path, spec: str, *model_keys: str) -> Path:
    keys = "".join(f"{key}\n" for key in model_keys)
    path = directory / "c.toml"
    path.write_text(
        '[experiment]\nname = "no-logprobs-batch"\nparadigm = "change-of-mind"\nseed = 5\n\n'
        f'[paradigm]\nitems = {ITEMS}\ndisplays = ["shown"]\nadvice = ["opposite"]\n'
        "accuracies = [0.6, 0.9]\n\n"
        f'[[models]]\nid = "m"\nspec = "{spec}"\n{keys}',
        encoding="utf-8",
    )
    return path


def batch_run(config: Path, out: Path) -> list[str]:
    return ["run", str(config), "--out", str(out), "--batch", "--batch-poll", "0.001"]


def stored_once(run_dir: Path) -> list[dict[str, Any]]:
    """The run's records, after checking that every planned call is stored exactly once."""
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    keys = [(r["trial_id"], r["stage"]) for r in records]
    assert len(keys) == len(set(keys)) == CALLS
    return records


def kill_at_call(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, number: int) -> Any:
    """Make the `number`-th call of `owner.name` (1: the first) raise Killed; returns the
    real one, to put back for the rerun."""
    real = getattr(owner, name)
    calls = 0

    def killing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == number:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, killing)
    return real


def write_prices(directory: Path, spec: str) -> Path:
    path = directory / "prices.toml"
    path.write_text(
        f'version = "test"\ncurrency = "USD"\n\n[defaults]\nbatch_discount = {BATCH_DISCOUNT}\n\n'
        f'[models]\n"{spec}" = {{ input = {INPUT_PRICE}, output = {OUTPUT_PRICE} }}\n',
        encoding="utf-8",
    )
    return path


def reported_total(
    run_dir: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[float, str]:
    """`mindshift cost RUN --prices FILE`: the total it prints, and its whole output."""
    capsys.readouterr()
    assert main(["cost", str(run_dir), "--prices", str(prices)]) == 0
    printed = capsys.readouterr().out
    found = re.search(r"total ([\d,.]+) USD", printed)
    assert found is not None, printed
    return float(found.group(1).replace(",", "")), printed


def expected_cost(output_tokens_per_call: int) -> float:
    per_call = PROMPT_TOKENS * INPUT_PRICE + output_tokens_per_call * OUTPUT_PRICE
    return CALLS * per_call / 1_000_000 * BATCH_DISCOUNT


# ---------------------------------------------------------------- OpenAI o4-mini


def test_an_openai_reasoning_model_killed_before_its_turn_2_batch_id_is_logged_resumes(
    fake_openai: FakeO4Mini,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """o4-mini under `sampling` (n = 4 per request): killed between submitting the turn-2
    batch and logging its id, the rerun finds that batch by its token and collects it; every
    call is stored once, each from one batch line with n = 4, with the reasoning tokens,
    which the cost report prices as output."""
    spec = "openai:o4-mini"
    config = write_config(
        tmp_path, spec, 'readout = "sampling"', f"samples = {SAMPLES}", 'reasoning_effort = "low"'
    )
    out = tmp_path / "run"
    real = kill_at_call(monkeypatch, BatchLog, "submitted", 2)  # turn 1's logged; turn 2's is not
    with pytest.raises(ExceptionGroup) as stop:
        main(batch_run(config, out))
    assert stop.group_contains(Killed)
    assert len(fake_openai.batches) == 2
    (lost,) = BatchLog(out).open_batches()
    assert lost.batch_id is None and lost.stage == 2
    assert fake_openai.batches["batch_1"]["status"] == "validating"  # never polled
    turn_1 = (out / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(turn_1) == ITEMS

    monkeypatch.setattr(BatchLog, "submitted", real)
    assert main(batch_run(config, out)) == 0

    records = stored_once(out)
    assert len(fake_openai.batches) == 2  # the lost turn-2 batch was found, not sent again
    assert fake_openai.chat_calls == 2  # the two preflights, asking no logprobs
    assert BatchLog(out).open_batches() == []
    assert {r["batch_id"] for r in records if r["stage"] == 1} == {"batch_0"}
    assert {r["batch_id"] for r in records if r["stage"] == 2} == {"batch_1"}
    lines = [
        json.loads(line)
        for batch in fake_openai.batches.values()
        for line in fake_openai.files[batch["input_file_id"]].splitlines()
    ]
    assert len(lines) == CALLS  # one line per call, all its samples in it
    assert all(line["body"]["n"] == SAMPLES for line in lines)
    for record in records:
        assert record["error"] is None and record["readout_method"] == "sampling"
        assert len(record["readout_detail"]["replies"]) == SAMPLES  # every sample kept
        assert record["readout"]["probs"] == pytest.approx({"A": 0.5, "B": 0.5})
        assert record["usage"]["reasoning_tokens"] == OPENAI_REASONING
        assert record["usage"]["output_tokens"] == SAMPLES + OPENAI_REASONING

    total, printed = reported_total(out, write_prices(tmp_path, spec), capsys)
    assert f"{CALLS * OPENAI_REASONING:,}" in printed  # the reasoning column
    assert total == pytest.approx(expected_cost(SAMPLES + OPENAI_REASONING), abs=1e-4)
    assert total > expected_cost(SAMPLES) + 0.1  # the reasoning is what most of it costs


# ---------------------------------------------------------------- Gemini 2.5 Flash


def test_a_gemini_model_without_logprobs_killed_before_its_job_name_is_logged_resumes(
    fake_gemini: FakeFlash,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """gemini-2.5-flash under `verbal` (it refuses logprobs; the preflight asks none):
    killed between creating the turn-1 job and logging its name, the rerun finds the job by
    its display name and collects it, then sends turn 2; every call stored once, with its
    stated confidence and its thought tokens, priced as output."""
    spec = "gemini:gemini-2.5-flash"
    config = write_config(tmp_path, spec, 'readout = "verbal"')
    out = tmp_path / "run"
    real = kill_at_call(monkeypatch, BatchLog, "submitted", 1)
    with pytest.raises(ExceptionGroup) as stop:
        main(batch_run(config, out))
    assert stop.group_contains(Killed)
    assert list(fake_gemini.jobs) == ["batches/job0"]
    (lost,) = BatchLog(out).open_batches()
    assert lost.batch_id is None and lost.stage == 1
    assert not (out / "calls.jsonl").exists() or not (out / "calls.jsonl").read_text()

    monkeypatch.setattr(BatchLog, "submitted", real)
    assert main(batch_run(config, out)) == 0

    records = stored_once(out)
    assert list(fake_gemini.jobs) == ["batches/job0", "batches/job1"]  # job0 not sent again
    assert fake_gemini.generate_calls == 2  # the two preflights, asking no logprobs
    assert BatchLog(out).open_batches() == []
    assert len(fake_gemini.requests["batches/job0"]) == ITEMS
    assert len(fake_gemini.requests["batches/job1"]) == ITEMS * CONDITIONS
    assert {r["batch_id"] for r in records if r["stage"] == 1} == {"batches/job0"}
    assert {r["batch_id"] for r in records if r["stage"] == 2} == {"batches/job1"}
    for record in records:
        assert record["error"] is None and record["readout_method"] == "verbal"
        assert record["choice"] == "A"
        assert record["readout_detail"]["stated"] == pytest.approx(0.8)
        assert record["usage"]["reasoning_tokens"] == GEMINI_THOUGHTS
        assert record["usage"]["output_tokens"] == 1 + GEMINI_THOUGHTS  # thoughts are output
    # Turn 2 was built from the turn-1 answers collected from the found job.
    assert {r["request"]["situation"]["initial_choice"] for r in records if r["stage"] == 2} == {
        "A"
    }

    total, printed = reported_total(out, write_prices(tmp_path, spec), capsys)
    assert f"{CALLS * GEMINI_THOUGHTS:,}" in printed
    assert total == pytest.approx(expected_cost(1 + GEMINI_THOUGHTS), abs=1e-4)


def test_a_gemini_sampling_run_killed_after_storing_a_job_before_marking_it_collected(
    fake_gemini: FakeFlash, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gemini-2.5-flash under `sampling` (its n samples as candidates of one request): killed
    after the turn-2 job's answers are stored but before the log marks it collected, the
    rerun reopens the job, stores nothing twice and submits nothing new."""
    config = write_config(
        tmp_path, "gemini:gemini-2.5-flash", 'readout = "sampling"', "samples = 4"
    )
    out = tmp_path / "run"
    real = kill_at_call(monkeypatch, BatchLog, "collected", 2)  # turn 1's marked; turn 2's is not
    with pytest.raises(ExceptionGroup) as stop:
        main(batch_run(config, out))
    assert stop.group_contains(Killed)
    stored_once(out)  # every answer was on disk before the kill
    (unmarked,) = BatchLog(out).open_batches()
    assert unmarked.batch_id == "batches/job1"

    monkeypatch.setattr(BatchLog, "collected", real)
    assert main(batch_run(config, out)) == 0
    records = stored_once(out)
    assert list(fake_gemini.jobs) == ["batches/job0", "batches/job1"]
    assert BatchLog(out).open_batches() == []
    sent = [entry for job in fake_gemini.requests.values() for entry in job]
    assert [entry["request"]["generationConfig"]["candidateCount"] for entry in sent] == [4] * CALLS
    for record in records:
        assert record["error"] is None and record["readout_method"] == "sampling"
        assert record["readout_detail"]["replies"] == ["A", "B", "A", "B"]  # thoughts left out
        assert record["usage"]["reasoning_tokens"] == GEMINI_THOUGHTS


def test_auto_readout_on_a_model_without_logprobs_runs_as_batch_jobs(
    fake_gemini: FakeFlash, tmp_path: Path
) -> None:
    """`readout = "auto"` on gemini-2.5-flash: the preflight finds no logprobs and picks
    sampling, and `--batch` then sends every trial call in batch jobs (before 89e5885 the auto
    readout had no batch API, so each call went singly to generateContent at full price)."""
    config = write_config(tmp_path, "gemini:gemini-2.5-flash", 'readout = "auto"', "samples = 4")
    out = tmp_path / "run"
    assert main(batch_run(config, out)) == 0
    records = stored_once(out)
    assert list(fake_gemini.jobs) == ["batches/job0", "batches/job1"]
    sent = [entry for job in fake_gemini.requests.values() for entry in job]
    assert len(sent) == CALLS
    assert fake_gemini.generate_calls < CALLS, "trial calls went singly, not in batch jobs"
    for record in records:
        assert record["error"] is None and record["readout_method"] == "sampling"


@pytest.mark.parametrize("readout", ["verbal-2stage", "ptrue"])
def test_a_readout_that_asks_twice_is_refused_under_batch_before_any_request(
    readout: str, fake_openai: FakeO4Mini, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A readout that asks twice per call cannot ride in a batch: one line and exit 2, said
    before the preflight sends anything and before the run directory is made."""
    config = write_config(
        tmp_path, "openai:o4-mini", f'readout = "{readout}"', 'reasoning_effort = "low"'
    )
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(batch_run(config, out)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"readout {readout!r} cannot run under --batch (it asks twice per call)" in err
    assert fake_openai.chat_calls == 0 and not fake_openai.batches and not fake_openai.files
    assert not out.exists()
