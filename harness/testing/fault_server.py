"""A fault-injecting OpenAI-compatible chat-completions server, over real HTTP on 127.0.0.1.

It answers `POST .../chat/completions` like a small model that has read the question: a
valid chat completion whose first token is an option label, with `logprobs` and
`top_logprobs` for the labels (and a little mass on other tokens). At configurable rates it
instead fails the way real services do:

| fault        | what the client sees                                                  |
| ------------ | --------------------------------------------------------------------- |
| rate_limit   | 429 with `Retry-After` and `retry-after-ms`                            |
| server_error | 500                                                                   |
| unavailable  | 503 with `Retry-After`                                                |
| reset        | the connection reset (TCP RST) after the request, with no response    |
| stall        | no response for `stall_s` (past the client's timeout), then a close   |
| malformed    | 200 with a JSON body cut off halfway                                  |
| no_logprobs  | 200 with a valid completion whose `logprobs` is null                  |

Which fault (if any) a request gets is drawn from a seeded hash of the request body and of
how many times that same body was sent before, so a run's fault pattern does not depend on
the order in which concurrent requests arrive, and a retried request draws afresh.
Requests whose `seed` is `spare_seed` (the backends' preflight probes send seed 0) never get
the two content faults (malformed, no_logprobs), which would rightly stop a run before it
starts; they still get the transport faults, which the preflight retries.

It also serves `GET /v1/models`, `GET /version` and `GET /health` (so `vllm:` backends pass
their preflight against it), and `GET /stats` (request counts by outcome).

Bounded: it stops by itself after `max_requests` requests, after `idle_timeout_s` without
a request, or after `lifetime_s`, so a test that dies cannot leave it running. Use it as a
context manager (it runs its own event loop in a thread), or as a process:
`python -m mindshift.harness.testing.fault_server --fault-rate 0.3` prints its URL and serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "reset",
    "stall",
    "malformed",
    "no_logprobs",
)
CONTENT_FAULTS = frozenset({"malformed", "no_logprobs"})
_LABELS_LINE = re.compile(r"label of your answer: (.+)\.\s*$")


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request (their sum is the total fault rate)."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    unavailable: float = 0.0
    reset: float = 0.0
    stall: float = 0.0
    malformed: float = 0.0
    no_logprobs: float = 0.0

    def __post_init__(self) -> None:
        if any(value < 0 for value in self.as_dict().values()) or self.total > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1: {self}")

    @classmethod
    def uniform(cls, total: float) -> FaultRates:
        """`total` spread evenly over every kind of fault."""
        share = total / len(FAULT_KINDS)
        return cls(**dict.fromkeys(FAULT_KINDS, share))

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @property
    def total(self) -> float:
        return math.fsum(self.as_dict().values())


@dataclass(frozen=True)
class FaultServerConfig:
    """How the server behaves."""

    faults: FaultRates = field(default_factory=FaultRates)
    seed: int = 0
    """Seeds the fault draws and the model's leanings."""
    retry_after_s: float = 0.05
    """What 429 and 503 answers ask the client to wait."""
    stall_s: float = 2.0
    """How long a stalled request hangs before its connection is closed."""
    latency_s: float = 0.0
    """Added to every answer (0: as fast as the server can)."""
    models: tuple[str, ...] = ("fault-model",)
    """Served model names (GET /v1/models); any name is answered on chat completions."""
    spare_seed: int | None = 0
    """Requests with this `seed` get no content faults (the preflight probes)."""
    max_requests: int = 1_000_000
    idle_timeout_s: float = 300.0
    lifetime_s: float = 3600.0
    host: str = "127.0.0.1"
    port: int = 0
    """0: any free port (see `FaultServer.port`)."""


def _digest(*parts: bytes) -> int:
    hasher = hashlib.blake2b(digest_size=8)
    for part in parts:
        hasher.update(part)
        hasher.update(b"\x00")
    return int.from_bytes(hasher.digest(), "big")


def _labels(messages: list[dict[str, Any]]) -> list[str]:
    """The option labels the prompt asks for ("... label of your answer: A or B.")."""
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, str):
            continue
        match = _LABELS_LINE.search(content)
        if match:
            text = match.group(1).replace(" or ", ", ")
            labels = [label.strip() for label in text.split(",") if label.strip()]
            if labels:
                return labels
    return ["A", "B"]


def completion(body: dict[str, Any], seed: int, *, logprobs: bool = True) -> dict[str, Any]:
    """The chat completion a small, fairly sure model gives to `body`.

    Its leaning depends on the question only (a seeded hash of the messages), so repeated
    samples of one prompt differ only by the sampled answer, drawn with the request's seed.
    """
    messages = body.get("messages") or []
    labels = _labels(messages)
    question = json.dumps(messages, sort_keys=True).encode()
    lean = _digest(str(seed).encode(), question)
    favourite = labels[lean % len(labels)]
    confidence = 0.55 + 0.4 * ((lean >> 8) % 1000) / 1000.0
    outside = 0.02
    rest = (1.0 - confidence - outside) / max(len(labels) - 1, 1)
    probs = {label: (confidence if label == favourite else rest) for label in labels}
    sampler = random.Random(body.get("seed", 0))
    draw = sampler.random() * (1.0 - outside)
    answer = labels[-1]
    for label in labels:
        draw -= probs[label]
        if draw <= 0:
            answer = label
            break
    ranked = sorted([*probs.items(), ("The", outside)], key=lambda pair: -pair[1])
    top = [{"token": token, "logprob": math.log(p)} for token, p in ranked]
    wanted = body.get("top_logprobs")
    if isinstance(wanted, int) and wanted >= 0:
        top = top[:wanted]
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": answer},
        "logprobs": None,
        "finish_reason": "stop",
    }
    if logprobs and body.get("logprobs"):
        choice["logprobs"] = {
            "content": [{"token": answer, "logprob": math.log(probs[answer]), "top_logprobs": top}]
        }
    return {
        "id": f"chatcmpl-{lean:016x}",
        "object": "chat.completion",
        "created": 0,
        "model": str(body.get("model", "fault-model")),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 1,
            "total_tokens": prompt_tokens + 1,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Reset(Exception):
    """Reset this connection (a fault)."""


class FaultServer:
    """The server; `with FaultServer(config) as server:` serves at `server.base_url`."""

    def __init__(self, config: FaultServerConfig | None = None) -> None:
        self.config = config or FaultServerConfig()
        self.stats: Counter[str] = Counter()
        self.authorization: Counter[tuple[str, str]] = Counter()
        """Requests by (path, Authorization header or ""): lets a test check that a key
        reached this server (and the right one), where no file may hold it."""
        self._seen: Counter[bytes] = Counter()
        self._cumulative: list[tuple[float, str]] = []
        running = 0.0
        for kind, rate in self.config.faults.as_dict().items():
            running += rate
            self._cumulative.append((running, kind))
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._last_request = time.monotonic()
        self._connections: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fault server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (`http://127.0.0.1:PORT/v1`)."""
        return f"http://{self.config.host}:{self.port}/v1"

    def start(self) -> FaultServer:
        """Serve from a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._thread_main, name="fault-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"the fault server did not start: {self._error}")
        if self._port is None:
            raise RuntimeError("the fault server did not start in 30 s")
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended by itself meanwhile
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.serve())
        except Exception as error:  # noqa: BLE001 - reported to the starting thread
            self._error = error
            self._ready.set()

    async def serve(self, on_ready: Any = None) -> None:
        """Serve until stopped or a bound is reached (run it in your own loop, or `start`)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, self.config.host, self.config.port, backlog=1024
        )
        self._port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        if on_ready is not None:
            on_ready(self)
        started = time.monotonic()
        try:
            while not self._stopped.is_set():
                now = time.monotonic()
                if (
                    now - self._last_request > self.config.idle_timeout_s
                    or now - started > self.config.lifetime_s
                    or self.stats["requests"] >= self.config.max_requests
                ):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), timeout=0.2)
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    # ------------------------------------------------------------ HTTP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                method, path, body = request
                self._last_request = time.monotonic()
                try:
                    status, headers, payload = await self._respond(method, path, body)
                except _Reset:
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        # Linger 0: close sends RST, as a crashed proxy or server would.
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    writer.transport.abort()
                    return
                if status == 0:  # a stall: hang up without an answer
                    break
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
                headers = {
                    "content-type": "application/json",
                    "content-length": str(len(payload)),
                    **headers,
                }
                head.extend(f"{name}: {value}" for name, value in headers.items())
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away (or was killed): nothing to answer
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        self.authorization[path.split("?", 1)[0], headers.get("authorization", "")] += 1
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return method, path, body

    async def _respond(
        self, method: str, path: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = path.split("?", 1)[0].rstrip("/")
        if method == "GET":
            if path.endswith("/models"):
                data = [{"id": name, "object": "model"} for name in self.config.models]
                return 200, {}, json.dumps({"object": "list", "data": data}).encode()
            if path.endswith("/version"):
                return 200, {}, b'{"version": "fault-server"}'
            if path.endswith("/health"):
                return 200, {}, b"{}"
            if path.endswith("/stats"):
                return 200, {}, json.dumps(dict(self.stats)).encode()
            return 404, {}, b'{"error": {"message": "not found"}}'
        if method != "POST" or not path.endswith("/chat/completions"):
            self.stats[f"not found: {method} {path}"] += 1
            return 404, {}, b'{"error": {"message": "not found"}}'
        self.stats["requests"] += 1
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            return 400, {}, b'{"error": {"message": "the request is no JSON"}}'
        if self.config.latency_s > 0:
            await asyncio.sleep(self.config.latency_s)
        fault = self._fault(body, request)
        self.stats[fault or "ok"] += 1
        wait = self.config.retry_after_s
        retry_after = {"retry-after": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))}
        if fault == "rate_limit":
            message = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'
            return 429, retry_after, message
        if fault == "server_error":
            return 500, {}, b'{"error": {"message": "The server had an error"}}'
        if fault == "unavailable":
            return 503, retry_after, b'{"error": {"message": "The engine is overloaded"}}'
        if fault == "reset":
            raise _Reset
        if fault == "stall":
            await asyncio.sleep(self.config.stall_s)
            return 0, {}, b""
        answer = completion(request, self.config.seed, logprobs=fault != "no_logprobs")
        payload = json.dumps(answer).encode()
        if fault == "malformed":
            payload = payload[: len(payload) // 2]
        return 200, {}, payload

    def _fault(self, body: bytes, request: dict[str, Any]) -> str | None:
        digest = hashlib.blake2b(body, digest_size=16).digest()
        occurrence = self._seen[digest]
        self._seen[digest] += 1
        draw = _digest(str(self.config.seed).encode(), digest, str(occurrence).encode())
        u = (draw >> 11) / float(1 << 53)
        for bound, kind in self._cumulative:
            if u < bound:
                spare = (
                    self.config.spare_seed is not None
                    and request.get("seed") == self.config.spare_seed
                )
                if spare and kind in CONTENT_FAULTS:
                    return None
                return kind
        return None


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground; prints the base URL (one line) once it listens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="spread evenly over kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--idle-timeout", type=float, default=300.0)
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args(argv)
    config = FaultServerConfig(
        faults=FaultRates.uniform(args.fault_rate),
        seed=args.seed,
        latency_s=args.latency,
        stall_s=args.stall,
        retry_after_s=args.retry_after,
        idle_timeout_s=args.idle_timeout,
        lifetime_s=args.lifetime,
        port=args.port,
    )
    server = FaultServer(config)

    def announce(ready: FaultServer) -> None:
        sys.stdout.write(ready.base_url + "\n")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(on_ready=announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
