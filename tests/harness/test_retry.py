"""The retry policy (backoff, Retry-After, timeouts, deadline) and the adaptive limiter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from mindshift.harness import retry
from mindshift.harness.concurrency import AdaptiveLimiter, Outcome
from mindshift.harness.models.base import Capabilities, ModelBackend
from mindshift.harness.retry import CallRetrier, RetryPolicy, retry_after_s
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, Message, Prompt, Transient

OK = ChoiceResponse(choice="A", readout=None, raw={})
TRANSIENT = Transient()


def failure(message: str, transient: Transient | None = TRANSIENT) -> ChoiceResponse:
    return ChoiceResponse(choice=None, readout=None, raw={}, error=message, transient=transient)


def request(trial: str = "t") -> ChoiceRequest:
    prompt = Prompt((Message("user", "q"),), "My answer is:", ("A", "B"))
    return ChoiceRequest(trial_id=trial, stage=1, prompt=prompt, temperature=1.0, seed=1)


class Scripted(ModelBackend):
    """Answers each request from its own script, one entry per attempt."""

    capabilities = Capabilities(
        logprobs=False, top_k_limit=None, prefill=False, prompt_logprobs=False, batch=True
    )
    max_batch_size = 8

    def __init__(self, scripts: dict[str, list[ChoiceResponse | float]]) -> None:
        self.scripts = scripts
        self.calls: list[list[str]] = []

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        self.calls.append([r.trial_id for r in requests])
        answers = []
        for r in requests:
            step = self.scripts[r.trial_id].pop(0)
            if isinstance(step, float):  # hang this long (a stalled server)
                await asyncio.sleep(step)
                step = OK
            answers.append(step)
        return answers


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the backoff waits instead of sleeping them."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    return recorded


def run(
    backend: ModelBackend, requests: list[ChoiceRequest], policy: RetryPolicy
) -> list[ChoiceResponse]:
    async def go() -> list[ChoiceResponse]:
        retrier = CallRetrier(backend, policy, AdaptiveLimiter(4), rng=random.Random(0))
        return await retrier.answer(requests)

    return asyncio.run(go())


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=10.0)
    rng = random.Random(1)
    for retry_number, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        waits = [policy.backoff_s(retry_number, rng) for _ in range(200)]
        assert min(waits) >= ceiling / 2 and max(waits) <= ceiling
        assert max(waits) - min(waits) > ceiling / 10  # jittered, not constant


def test_retry_after_is_honoured_over_the_backoff() -> None:
    policy = RetryPolicy(base_s=1.0)
    rng = random.Random(2)
    assert 7.0 <= policy.delay_s(1, 7.0, rng) <= 7.7
    assert policy.delay_s(1, 10_000.0, rng) <= retry.RETRY_AFTER_CAP_S * 1.1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = {"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}
    assert retry_after_s(header, now=now) == pytest.approx(30.0)


def test_transient_failures_are_retried_and_counted(waits: list[float]) -> None:
    backend = Scripted(
        {
            "a": [failure("HTTP 503"), failure("HTTP 429", Transient(True, 2.0)), OK],
            "b": [OK],
            "c": [failure("HTTP 400: bad", None)],
        }
    )
    a, b, c = run(backend, [request("a"), request("b"), request("c")], RetryPolicy())
    assert (a.error, a.attempts, a.attempt_errors) == (None, 3, ("HTTP 503", "HTTP 429"))
    assert (b.error, b.attempts) == (None, 1)
    assert (c.error, c.attempts, c.attempt_errors) == ("HTTP 400: bad", 1, ())
    assert backend.calls == [["a", "b", "c"], ["a"], ["a"]]  # only the failed one again
    assert waits[0] <= 1.0 and 2.0 <= waits[1] <= 2.2  # backoff, then Retry-After


def test_retries_run_out(waits: list[float]) -> None:
    backend = Scripted({"a": [failure(f"HTTP 500 #{n}") for n in range(3)]})
    (a,) = run(backend, [request("a")], RetryPolicy(max_retries=2))
    assert a.error == "HTTP 500 #2"
    assert a.attempts == 3
    assert a.attempt_errors == ("HTTP 500 #0", "HTTP 500 #1")
    assert len(waits) == 2


def test_a_stalled_attempt_times_out_and_is_retried() -> None:
    backend = Scripted({"a": [5.0, OK]})
    policy = RetryPolicy(attempt_timeout_s=0.05, base_s=0.001)
    (a,) = run(backend, [request("a")], policy)
    assert a.error is None
    assert a.attempts == 2
    assert a.attempt_errors[0].startswith("attempt timed out")


def test_the_deadline_ends_a_call_that_keeps_failing() -> None:
    backend = Scripted({"a": [failure("HTTP 503", Transient(retry_after_s=10.0))] * 5})
    (a,) = run(backend, [request("a")], RetryPolicy(deadline_s=1.0))
    assert a.attempts == 1
    assert a.error is not None
    assert a.error.startswith("HTTP 503") and "deadline" in a.error


def test_the_limiter_halves_once_per_window_and_grows_back() -> None:
    changes: list[int] = []
    limiter = AdaptiveLimiter(8, on_change=changes.append)

    async def go() -> None:
        epochs = [await limiter.acquire() for _ in range(8)]
        # A burst of 429s from calls of one window cuts the limit once, not eight times.
        for epoch in epochs:
            limiter.release(epoch, Outcome.RATE_LIMITED)
        assert limiter.limit == 4
        # Successes add one slot per window of successes, back to the ceiling.
        for _ in range(40):
            limiter.release(await limiter.acquire(), Outcome.SUCCEEDED)
        assert limiter.limit == 8

    asyncio.run(go())
    assert changes[0] == 4 and changes[-1] == 8


def test_the_limiter_queues_in_order_and_survives_cancellation() -> None:
    limiter = AdaptiveLimiter(1)
    order: list[str] = []

    async def take(name: str) -> None:
        epoch = await limiter.acquire()
        order.append(name)
        await asyncio.sleep(0)
        limiter.release(epoch, Outcome.SUCCEEDED)

    async def go() -> None:
        held = await limiter.acquire()
        first = asyncio.create_task(take("first"))
        doomed = asyncio.create_task(take("doomed"))
        last = asyncio.create_task(take("last"))
        await asyncio.sleep(0)
        doomed.cancel()
        limiter.release(held, Outcome.NEUTRAL)
        await asyncio.gather(first, last)
        assert doomed.cancelled()
        assert limiter.in_flight == 0

    asyncio.run(go())
    assert order == ["first", "last"]
