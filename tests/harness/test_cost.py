"""Usage and cost: `mindshift cost RUN_DIR`, the versioned price table, `run --dry-run`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from mindshift.cli import EXIT_CALLS_FAILED, main
from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.openai_chat import OpenAIChatBackend
from mindshift.harness.models.openai_settings import OpenAISettings
from mindshift.harness.pricing import PRICES_ENV, cost_of_records, load_price_table
from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.testing.fault_server import FaultRates, FaultServer, FaultServerConfig
from mindshift.harness.types import Asked, Item, Message, ReplyRequest, ReplyResponse, Usage

KEY = "sk-cost-test-key-777"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = FaultServerConfig(faults=FaultRates(no_logprobs=0.2), seed=8)
    with FaultServer(config) as running:
        yield running


def config_text(base_url: str, items: int = 4) -> str:
    return (
        '[experiment]\nname = "cost"\nparadigm = "change-of-mind"\n\n'
        f"[paradigm]\nitems = {items}\naccuracies = [0.7, 0.9]\n\n"
        f'[[models]]\nid = "gpt"\nspec = "openai:gpt-4o-2024-08-06"\nbase_url = "{base_url}"\n'
        "concurrency = 4\n\n"
        '[[models]]\nid = "sim"\nspec = "sim:bayes"\n'
    )


def test_the_shipped_table_prices_specs_by_the_most_specific_pattern() -> None:
    table = load_price_table(environ={})
    assert table.version and table.currency == "USD"
    assert table.price_of("openai:gpt-4o-2024-08-06") == table.models["openai:gpt-4o*"]
    assert table.price_of("openai:gpt-4o-mini") == table.models["openai:gpt-4o-mini*"]
    assert table.price_of("openai:some-future-model") is None
    usage = Usage(input_tokens=1_000_000, cached_tokens=200_000, output_tokens=100_000)
    # 800k uncached at 2.50 + 200k cached at 1.25 + 100k output at 10.00 (per million)
    assert table.cost("openai:gpt-4o", usage) == pytest.approx(2.0 + 0.25 + 1.0)
    assert table.cost("openai:gpt-4o", usage, batch=True) == pytest.approx(3.25 / 2)
    assert table.cost("sim:bayes", usage) == 0.0


def test_a_users_table_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        'version = "mine-1"\n[models]\n"openai:*" = { input = 1.0, output = 2.0 }\n',
        encoding="utf-8",
    )
    table = load_price_table(environ={PRICES_ENV: str(path)})
    assert table.version == "mine-1" and table.source == str(path)
    assert table.cost("openai:x", Usage(input_tokens=10**6, output_tokens=10**6)) == 3.0
    path.write_text('version = "x"\n[models]\n"a:*" = { input = 1.0 }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing key 'models\.a:\*\.output'"):
        load_price_table(path)


def test_cost_of_a_run_counts_every_call_and_retired_failure(
    server: FaultServer,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(config_text(server.base_url))
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_CALLS_FAILED
    code = main(["run", str(config), "--out", str(run_dir)])  # retries the failures
    calls = list(read_call_records(run_dir / "calls.jsonl"))
    assert code == (EXIT_CALLS_FAILED if any(r.failed for r in calls) else 0)
    retired = list(read_call_records(run_dir / "failures.jsonl"))
    gpt_calls = [r for r in calls if r.model == "gpt" and r.attempts]
    assert all(r.usage.input_tokens > 0 for r in gpt_calls)  # usage logged per call
    table = load_price_table(environ={})
    report = cost_of_records(calls, table, retired)
    gpt = report.lines["gpt"]
    tokens_in = sum(r.usage.input_tokens for r in calls + retired if r.model == "gpt")
    assert gpt.input_tokens == tokens_in
    assert gpt.retired == sum(r.model == "gpt" for r in retired) > 0
    assert gpt.cost == pytest.approx(
        sum(table.cost(r.spec or "", r.usage) or 0.0 for r in calls + retired if r.model == "gpt")
    )
    assert report.lines["sim"].cost == 0.0

    capsys.readouterr()
    assert main(["cost", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "gpt" in out and table.version in out
    assert f"{report.total:,.4f}" in out


def test_an_unpriced_model_has_an_unknown_cost_not_zero() -> None:
    table = load_price_table(environ={})
    item = Item("i", "Which?", ("A", "B"), ("yes", "no"), "A")
    record = CallRecord(
        trial_id="t",
        stage=1,
        model="x",
        item=item,
        condition="c",
        repeat=0,
        spec="openai:unlisted",
        usage=Usage(input_tokens=5),
    )
    report = cost_of_records([record], table)
    assert report.lines["x"].cost is None and report.total is None


def test_cost_refuses_a_directory_without_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "calls.jsonl" in err


def test_dry_run_counts_what_is_left_and_touches_nothing(
    server: FaultServer,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(config_text(server.base_url, items=4))
    run_dir = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not run_dir.exists()
    assert server.stats["requests"] == 0  # not even a preflight
    total = 2 * 4 * (1 + 2 * 3 * 2)  # two models x four items x (1 + 12 conditions)
    assert f"{total:,} calls to make" in out

    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_CALLS_FAILED
    failed = sum(
        json.loads(line)["error"] is not None
        for line in (run_dir / "calls.jsonl").read_text().splitlines()
    )
    assert failed > 0
    snapshot = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{failed:,} calls to make" in out  # the failures would be retried
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run", "--skip-failed"]) == 0
    assert "0 calls to make" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == snapshot


def test_a_request_with_n_is_priced_as_one_request_with_n_outputs() -> None:
    """OpenAI bills a request with n = 5 its prompt once and the five replies' tokens, and
    reports them so: the usage the backend records prices that way, not as five calls."""
    body = {
        "id": "chatcmpl-n",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": k, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"}
            for k in range(5)
        ],
        "usage": {
            "prompt_tokens": 1_000,
            "completion_tokens": 5 * 12,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    client = httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
    )
    backend = OpenAIChatBackend(
        ModelRef("gpt", "openai:gpt-4o"),
        OpenAISettings(),
        http_client=client,
        environ={"OPENAI_API_KEY": KEY},
    )
    request = ReplyRequest(
        trial_id="t",
        stage=1,
        messages=(Message("user", "A or B?"),),
        labels=("A", "B"),
        temperature=1.0,
        seed=3,
        asked=Asked("answer"),
        n=5,
    )

    async def go() -> list[ReplyResponse]:
        try:
            return await backend.reply([request])
        finally:
            await backend.aclose()

    (response,) = asyncio.run(go())
    assert len(response.texts) == 5
    assert response.usage == Usage(input_tokens=1_000, output_tokens=60)
    table = load_price_table(environ={})
    price = table.models["openai:gpt-4o*"]
    one_request = (1_000 * price.input + 60 * price.output) / 1_000_000
    assert table.cost("openai:gpt-4o", response.usage) == pytest.approx(one_request)
    assert table.cost("openai:gpt-4o", response.usage, batch=True) == pytest.approx(one_request / 2)
    # Five separate requests would have paid for the prompt five times.
    five_requests = 5 * (1_000 * price.input + 12 * price.output) / 1_000_000
    assert five_requests - one_request == pytest.approx(4 * 1_000 * price.input / 1_000_000)
