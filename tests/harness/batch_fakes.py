"""Scripted batch APIs for the tests: OpenAI's Files + Batches endpoints and Gemini's batch
mode, as `httpx2.MockTransport` handlers (their wire formats as the SDKs send and read them).
A request for free-text replies (no logprobs asked) is answered with its `n` replies
(`candidateCount` for Gemini), reply k saying "A" when k is even and "B" when it is odd."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx2
import pytest

from mindshift.harness.models import gemini, openai_chat
from mindshift.harness.models.base import ModelRef
from mindshift.harness.models.gemini import GeminiBackend
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.openai_chat import OpenAIChatBackend
from mindshift.harness.models.openai_settings import OpenAISettings
from mindshift.harness.testing.fault_server import completion


def reply_text(k: int) -> str:
    return "A" if k % 2 == 0 else "B"


def openai_replies(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion of a free-text reply request: `n` choices."""
    n = body.get("n", 1)
    return {
        "id": "chatcmpl-replies",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": k,
                "message": {"role": "assistant", "content": reply_text(k)},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for k in range(n)
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n},
    }


def openai_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A batch line's answer: a trial's logprob answer, or a reply request's replies."""
    return completion(body, 0) if body.get("logprobs") else openai_replies(body)


class FakeOpenAI:
    """The Files and Batches endpoints (and chat completions, for the preflight)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.chat_calls = 0
        self.status_outage = 0
        """Answer this many status requests with 500 (an outage while polling)."""
        self.fail_every = 0
        """Answer every n-th request of a batch with an error line (0: none)."""
        self.expire_after: int | None = None
        """Expire batches after answering this many requests (None: complete them)."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        if path.endswith("/chat/completions"):
            self.chat_calls += 1
            return httpx2.Response(200, json=completion(json.loads(request.content), 0))
        if method == "POST" and path.endswith("/files"):
            parts = (line.strip(b"\r") for line in request.content.split(b"\n"))
            lines = [line for line in parts if line.startswith(b'{"custom_id"')]
            file_id = f"file-{len(self.files)}"
            self.files[file_id] = b"\n".join(lines) + b"\n"
            return httpx2.Response(200, json=self._file(file_id))
        if method == "POST" and path.endswith("/batches"):
            body = json.loads(request.content)
            assert body["endpoint"] == "/v1/chat/completions"
            assert body["completion_window"] == "24h"
            batch_id = f"batch_{len(self.batches)}"
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "completion_window": "24h",
                "input_file_id": body["input_file_id"],
                "created_at": 0,
                "status": "validating",
                "metadata": body.get("metadata"),
            }
            return httpx2.Response(200, json=self.batches[batch_id])
        if method == "GET" and path.endswith("/batches"):
            data = list(self.batches.values())
            return httpx2.Response(200, json={"object": "list", "data": data, "has_more": False})
        if method == "GET" and "/batches/" in path:
            if self.status_outage:
                self.status_outage -= 1
                return httpx2.Response(500, json={"error": {"message": "outage"}})
            return httpx2.Response(200, json=self._advance(self.batches[path.rsplit("/", 1)[1]]))
        if method == "GET" and path.endswith("/content"):
            return httpx2.Response(200, content=self.files[path.split("/")[-2]])
        return httpx2.Response(404, json={"error": {"message": f"no route {method} {path}"}})

    def _file(self, file_id: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": 0,
            "filename": "batch.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        """validating -> in_progress -> completed (or expired), writing the result files."""
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
            return batch
        if batch["status"] != "in_progress":
            return batch
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines()]
        output, errors = [], []
        for number, line in enumerate(lines, start=1):
            if self.expire_after is not None and number > self.expire_after:
                break
            result: dict[str, Any] = {"id": f"req_{number}", "custom_id": line["custom_id"]}
            if self.fail_every and number % self.fail_every == 0:
                result["response"] = {
                    "status_code": 500,
                    "body": {"error": {"message": "the model had an error"}},
                }
                result["error"] = None
                errors.append(result)
            else:
                result["response"] = {"status_code": 200, "body": openai_answer(line["body"])}
                result["error"] = None
                output.append(result)
        for name, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[name] = file_id
        batch["status"] = "expired" if self.expire_after is not None else "completed"
        return batch


def generated(label: str, p: float) -> dict[str, Any]:
    other = "B" if label == "A" else "A"
    top = [
        {"token": label, "logProbability": math.log(p)},
        {"token": other, "logProbability": math.log(1 - p)},
    ]
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": label}]},
                "finishReason": "STOP",
                "logprobsResult": {
                    "chosenCandidates": [top[0]],
                    "topCandidates": [{"candidates": top}],
                },
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 50,
            "candidatesTokenCount": 1,
            "thoughtsTokenCount": 3,
            "totalTokenCount": 54,
        },
        "modelVersion": "gemini-2.5-flash-001",
    }


def gemini_replies(count: int) -> dict[str, Any]:
    """The response of a free-text reply request: `count` candidates."""
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": reply_text(k)}]}, "index": k}
            for k in range(count)
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": count},
        "modelVersion": "gemini-2.5-flash-001",
    }


def gemini_answer(request: dict[str, Any]) -> dict[str, Any]:
    """A batch request's answer: a trial's logprob answer, or a reply request's replies."""
    config = request.get("generationConfig") or {}
    if config.get("responseLogprobs"):
        return generated("B", 0.7)
    return gemini_replies(config.get("candidateCount", 1))


class FakeGemini:
    """generateContent (the preflight), batchGenerateContent, batches.get and list."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.generate_calls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith(":generateContent"):
            self.generate_calls += 1
            return httpx2.Response(200, json=generated("A", 0.8))
        if path.endswith(":batchGenerateContent"):
            batch = json.loads(request.content)["batch"]
            name = f"batches/job{len(self.jobs)}"
            self.requests[name] = batch["inputConfig"]["requests"]["requests"]
            self.jobs[name] = {
                "name": name,
                "metadata": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                    "GenerateContentBatch",
                    "model": "models/gemini-2.5-flash",
                    "displayName": batch["displayName"],
                    "state": "BATCH_STATE_PENDING",
                },
            }
            return httpx2.Response(200, json=self.jobs[name])
        if request.method == "GET" and path.endswith("/batches"):
            return httpx2.Response(200, json={"operations": list(self.jobs.values())})
        if request.method == "GET" and "/batches/" in path:
            name = "batches/" + path.rsplit("/", 1)[1]
            job = self.jobs[name]
            if job["metadata"]["state"] == "BATCH_STATE_PENDING":
                job["metadata"]["state"] = "BATCH_STATE_RUNNING"
            elif job["metadata"]["state"] == "BATCH_STATE_RUNNING":
                answers = [
                    {"response": gemini_answer(entry["request"]), "metadata": entry["metadata"]}
                    for entry in self.requests[name]
                ]
                answers[0] = {
                    "error": {"code": 13, "message": "internal"},
                    "metadata": self.requests[name][0]["metadata"],
                }
                job["metadata"]["state"] = "BATCH_STATE_SUCCEEDED"
                job["metadata"]["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
                job["done"] = True
            return httpx2.Response(200, json=job)
        return httpx2.Response(404, json={"error": {"code": 404, "message": path}})


def serve_openai(monkeypatch: pytest.MonkeyPatch, service: FakeOpenAI, key: str) -> None:
    """Every `openai:` backend of the test talks to `service` (with `key` as its API key)."""
    monkeypatch.setenv("OPENAI_API_KEY", key)

    def create(model: ModelRef, settings: OpenAISettings) -> OpenAIChatBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(service))
        return OpenAIChatBackend(model, settings, http_client=client)

    monkeypatch.setattr(openai_chat, "create", create)


def serve_gemini(monkeypatch: pytest.MonkeyPatch, service: FakeGemini, key: str) -> None:
    """Every `gemini:` backend of the test talks to `service` (with `key` as its API key)."""
    monkeypatch.setenv("GEMINI_API_KEY", key)

    def create(model: ModelRef, settings: GeminiSettings) -> GeminiBackend:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(service))
        return GeminiBackend(model, settings, http_client=client)

    monkeypatch.setattr(gemini, "create", create)
