"""A scripted Anthropic API for the tests: the Messages endpoint and the Message Batches
endpoints as an `httpx2.MockTransport` handler, in the wire format the `anthropic` SDK sends
and reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

API = "https://api.anthropic.com"
Replier = Callable[[dict[str, Any]], str]
"""The text a scripted model replies to a Messages body."""


def message(
    text: str,
    *,
    model: str = "claude-sonnet-4-5-20250929",
    usage: dict[str, Any] | None = None,
    stop_reason: str = "end_turn",
    thinking: str | None = None,
) -> dict[str, Any]:
    """A Messages API reply whose text is `text` (after a thinking block, when given)."""
    content: list[dict[str, Any]] = []
    if thinking is not None:
        content.append({"type": "thinking", "thinking": thinking, "signature": "sig"})
    content.append({"type": "text", "text": text})
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 40,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def error(status: int, kind: str, text: str, **headers: str) -> httpx2.Response:
    """An API error response as Anthropic sends it."""
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return httpx2.Response(status, json=body, headers=headers)


def first_label(body: dict[str, Any]) -> str:
    """Answers A to a first turn, B once the conversation holds an earlier answer."""
    return "B" if any(turn["role"] == "assistant" for turn in body["messages"]) else "A"


class FakeAnthropic:
    """POST /v1/messages, and the Message Batches endpoints (create, list, retrieve, results).

    A batch is in progress when created and has ended by the time it is retrieved again
    (`polls_to_end` sets how many retrievals it takes); its results come in reverse order, as
    the API promises no order.
    """

    def __init__(self, replier: Replier = first_label) -> None:
        self.replier = replier
        self.message_calls = 0
        self.message_bodies: list[dict[str, Any]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_requests: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.polls_to_end = 1
        self.errored_custom_ids: set[str] = set()
        """Untagged custom ids the batch answers with an error."""
        self.status_outage = 0
        """Answer this many retrievals with 500 (an outage while polling)."""
        self.clock = datetime.now(UTC) - timedelta(hours=1)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/v1/messages":
            body = json.loads(request.content)
            self.message_calls += 1
            self.message_bodies.append(body)
            return httpx2.Response(200, json=message(self.replier(body), model=body["model"]))
        if method == "POST" and path == "/v1/messages/batches":
            return self._create(json.loads(request.content)["requests"])
        if method == "GET" and path == "/v1/messages/batches":
            return self._list(request)
        if method == "GET" and path.endswith("/results"):
            return self._results(path.split("/")[-2])
        if method == "GET" and path.startswith("/v1/messages/batches/"):
            return self._retrieve(path.rsplit("/", 1)[1])
        return error(404, "not_found_error", f"no route {method} {path}")

    def _create(self, requests: list[dict[str, Any]]) -> httpx2.Response:
        batch_id = f"msgbatch_{len(self.batches):04d}"
        for line in requests:
            assert set(line) == {"custom_id", "params"}
            assert len(line["custom_id"]) <= 64
        assert len({line["custom_id"] for line in requests}) == len(requests)
        self.clock += timedelta(minutes=1)
        self.batch_requests[batch_id] = requests
        self.polls[batch_id] = 0
        self.batches[batch_id] = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": len(requests),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": self.clock.isoformat(),
            "expires_at": (self.clock + timedelta(hours=24)).isoformat(),
            "ended_at": None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        return httpx2.Response(200, json=self.batches[batch_id])

    def _list(self, request: httpx2.Request) -> httpx2.Response:
        newest_first = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        after = request.url.params.get("after_id")
        if after is not None:
            ids = [batch["id"] for batch in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :]
        limit = int(request.url.params.get("limit", "20"))
        page = newest_first[:limit]
        return httpx2.Response(
            200,
            json={
                "data": page,
                "has_more": len(newest_first) > limit,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )

    def _retrieve(self, batch_id: str) -> httpx2.Response:
        if self.status_outage:
            self.status_outage -= 1
            return error(500, "api_error", "outage")
        if batch_id not in self.batches:
            return error(404, "not_found_error", f"no batch {batch_id}")
        batch = self.batches[batch_id]
        if batch["processing_status"] == "in_progress":
            self.polls[batch_id] += 1
            if self.polls[batch_id] >= self.polls_to_end:
                self._end(batch)
        return httpx2.Response(200, json=batch)

    def _end(self, batch: dict[str, Any]) -> None:
        counts = batch["request_counts"]
        errored = sum(
            1
            for line in self.batch_requests[batch["id"]]
            if line["custom_id"].rpartition("-")[0] in self.errored_custom_ids
        )
        counts.update(processing=0, errored=errored, succeeded=counts["processing"] - errored)
        batch["processing_status"] = "ended"
        batch["ended_at"] = self.clock.isoformat()
        batch["results_url"] = f"{API}/v1/messages/batches/{batch['id']}/results"

    def _results(self, batch_id: str) -> httpx2.Response:
        lines = []
        for line in reversed(self.batch_requests[batch_id]):
            result: dict[str, Any]
            if line["custom_id"].rpartition("-")[0] in self.errored_custom_ids:
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                }
            else:
                reply = message(self.replier(line["params"]), model=line["params"]["model"])
                result = {"type": "succeeded", "message": reply}
            lines.append(json.dumps({"custom_id": line["custom_id"], "result": result}))
        content = ("\n".join(lines) + "\n").encode()
        return httpx2.Response(200, content=content, headers={"content-type": "application/binary"})
