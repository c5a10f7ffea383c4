"""API keys come from the environment and go into HTTP clients only: no file of a run, and
no log line or terminal output, holds a key or an Authorization header.

The runs go through real HTTP (the fault server, with faults, so error paths are logged
too) for `openai:` and `vllm:`, and through google-genai's client (scripted transport) for
`gemini:`, in batch mode as well; every SDK logger is captured at DEBUG level.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from mindshift.cli import EXIT_CALLS_FAILED, main
from mindshift.harness.models import gemini, openai_chat
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.gemini import GeminiBackend
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.openai_chat import OpenAIChatBackend
from mindshift.harness.models.openai_settings import OpenAISettings
from mindshift.harness.testing.fault_server import FaultRates, FaultServer, FaultServerConfig
from tests.harness.batch_fakes import FakeGemini, FakeOpenAI

OPENAI_KEY = "sk-secret-openai-5f2b9c1e7a"
VLLM_KEY = "vllm-secret-token-83hd02"
GEMINI_KEY = "AIza-secret-gemini-c9d8e7"
KEYS = (OPENAI_KEY, VLLM_KEY, GEMINI_KEY)
HEADER = re.compile(rb"authorization|bearer |x-goog-api-key", re.IGNORECASE)


def _faulty() -> FaultServerConfig:
    return FaultServerConfig(
        faults=FaultRates.uniform(0.3),
        retry_after_s=0.01,
        stall_s=1.0,
        seed=4,
        models=("served-model",),
    )


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The OpenAI model's server."""
    with FaultServer(_faulty()) as running:
        yield running


@pytest.fixture
def vllm_server() -> Iterator[FaultServer]:
    """The vLLM model's server: its own, so each key's destination can be checked."""
    with FaultServer(_faulty()) as running:
        yield running


class Recording:
    """A MockTransport handler that records each request's key headers, then answers."""

    def __init__(self, handler: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.handler = handler
        self.keys: Counter[str] = Counter()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        for name in ("authorization", "x-goog-api-key"):
            if name in request.headers:
                self.keys[f"{name}: {request.headers[name]}"] += 1
        return self.handler(request)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2", "google_genai", "mindshift"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def assert_no_secret(blob: bytes, where: str) -> None:
    for key in KEYS:
        assert key.encode() not in blob, f"a key in {where}"
    match = HEADER.search(blob)
    context = b"" if match is None else blob[max(0, match.start() - 80) : match.end() + 80]
    assert match is None, f"an Authorization header in {where}: {context!r}"


def test_keys_never_reach_a_file_a_log_or_the_terminal(
    server: FaultServer,
    vllm_server: FaultServer,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (The test's name avoids the words searched for: pytest puts it in tmp_path.)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("VLLM_API_KEY", VLLM_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    fake = FakeGemini()
    gemini_seen = Recording(fake)

    def create(model: ModelRef, settings: GeminiSettings) -> GeminiBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(gemini_seen))
        return GeminiBackend(model, settings, http_client=client)

    monkeypatch.setattr(gemini, "create", create)
    common = "timeout_s = 0.3\nretry_backoff_s = 0.01\n"
    config = tmp_path / "secrets.toml"
    config.write_text(
        '[experiment]\nname = "secrets"\nparadigm = "change-of-mind"\n\n'
        "[paradigm]\nitems = 3\naccuracies = [0.7]\n\n"
        f'[[models]]\nid = "gpt"\nspec = "openai:gpt-4o"\nconcurrency = 4\n{common}'
        f'base_url = "{server.base_url}"\n\n'
        f'[[models]]\nid = "served"\nspec = "vllm:served-model"\nconcurrency = 4\n{common}'
        f'base_url = "{vllm_server.base_url}"\n\n'
        '[[models]]\nid = "gem"\nspec = "gemini:gemini-2.5-flash"\n',
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    # Calls fail here (a fault server): a run that stored failures exits 3, not 0.
    ran = (0, EXIT_CALLS_FAILED)
    assert main(["run", str(config), "--out", str(run_dir)]) in ran
    assert main(["run", str(config), "--out", str(run_dir)]) in ran  # retries the failures
    # Batch mode: OpenAI's Files and Batches endpoints are scripted (the fault server has none).
    batches = FakeOpenAI()
    batch_seen = Recording(batches)

    def create_openai(model: ModelRef, settings: OpenAISettings) -> OpenAIChatBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(batch_seen))
        return OpenAIChatBackend(model, settings, http_client=client)

    monkeypatch.setattr(openai_chat, "create", create_openai)
    batch_dir = tmp_path / "batch-run"
    assert (
        main(["run", str(config), "--out", str(batch_dir), "--batch", "--batch-poll", "0"]) in ran
    )
    assert batches.batches
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == 0
    assert main(["cost", str(run_dir)]) == 0
    assert main(["analyse", str(run_dir)]) == 0

    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"calls.jsonl", "manifest.json", "trials.parquet"} <= names
    assert "failures.jsonl" in names  # error paths were exercised
    assert any(name.startswith("report") for name in names)
    for path in files:
        assert_no_secret(path.read_bytes(), str(path))
    out = capsys.readouterr()
    assert_no_secret(out.out.encode(), "stdout")
    assert_no_secret(out.err.encode(), "stderr")
    assert debug_logs.records, "the SDKs' debug logs were not captured"
    assert_no_secret(debug_logs.text.encode(), "the logs")
    # Each key did reach its own server, in its auth header, and no other key went there.
    assert server.stats["requests"] > 0 and vllm_server.stats["requests"] > 0
    for running, key in ((server, OPENAI_KEY), (vllm_server, VLLM_KEY)):
        calls = {auth for path, auth in running.authorization if path.endswith("/completions")}
        assert calls == {f"Bearer {key}"}
        # vLLM's /health and /version need no key (the client sends none there).
        assert {auth for _, auth in running.authorization} <= {f"Bearer {key}", ""}
    assert fake.generate_calls > 0 and fake.jobs
    assert set(gemini_seen.keys) == {f"x-goog-api-key: {GEMINI_KEY}"}
    assert batches.batches and batches.chat_calls > 0
    assert set(batch_seen.keys) == {f"authorization: Bearer {OPENAI_KEY}"}
    assert sum(batch_seen.keys.values()) > len(batches.batches)
