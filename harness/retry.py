"""Retrying model calls: one place that decides whether, when and how often to try again.

Backends make exactly one attempt per call (their SDKs' own retries are switched off) and
mark a failure that another attempt may fix as `Transient`. This module retries those:
capped exponential backoff with jitter, or the wait the provider asked for (Retry-After),
within a per-attempt timeout and an overall deadline per call. Because every attempt passes
through here, the attempts are counted once, the errors of the earlier attempts are kept
with the call's record, rate limits reach the concurrency limiter, and the progress bar can
show retries as they happen.

A call slot (`AdaptiveLimiter`) is held only while an attempt is in flight, never during a
backoff wait: waiting calls leave room for others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from mindshift.harness.concurrency import AdaptiveLimiter, Outcome
from mindshift.harness.http_retry_after import retry_after_s as retry_after_s
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, Transient

DEFAULT_MAX_RETRIES = 5
"""Six attempts in all: at a 30 % fault rate, one call in about a thousand still fails."""
DEFAULT_DEADLINE_S = 900.0
"""A call still failing after 15 minutes is recorded as failed (a later run retries it)."""
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
RETRY_AFTER_CAP_S = 600.0
"""A longer Retry-After than this is treated as this (the deadline may end the call first)."""
TIMEOUT_GRACE = 1.1
"""The runner's hard limit on an attempt is this multiple of the backend's own timeout
(plus a second), so the SDK's timeout, whose message is clearer, normally fires first."""


@dataclass(frozen=True)
class RetryPolicy:
    """How one model's calls are retried."""

    max_retries: int = DEFAULT_MAX_RETRIES
    """Attempts after the first; 0 never retries."""
    attempt_timeout_s: float | None = None
    """Hard limit on one attempt (None: the backend's own timeouts only)."""
    deadline_s: float | None = DEFAULT_DEADLINE_S
    """Limit on a call from its first attempt to its last, waits included (None: none)."""
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Wait before retry number `retry` (1, 2, ...): capped exponential, jittered over
        the upper half of each step so that calls that failed together spread out."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (retry - 1))
        return ceiling * rng.uniform(0.5, 1.0)

    def delay_s(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """The wait before retry number `retry`: what the provider asked for, if it did
        (with up to 10 % jitter on top), else the backoff."""
        if retry_after_s is None:
            return self.backoff_s(retry, rng)
        asked = min(max(retry_after_s, 0.0), RETRY_AFTER_CAP_S)
        return asked * rng.uniform(1.0, 1.1)


def _outcome(responses: Sequence[ChoiceResponse]) -> Outcome:
    if any(r.transient is not None and r.transient.rate_limited for r in responses):
        return Outcome.RATE_LIMITED
    if any(r.error is None for r in responses):
        return Outcome.SUCCEEDED
    return Outcome.NEUTRAL


def _timed_out(request_count: int, seconds: float) -> list[ChoiceResponse]:
    message = f"attempt timed out after {seconds:.3g} s"
    return [
        ChoiceResponse(
            choice=None,
            readout=None,
            raw={},
            latency_s=seconds,
            error=message,
            transient=Transient(),
        )
        for _ in range(request_count)
    ]


class CallRetrier:
    """Answers batches of requests through one backend, retrying transient failures."""

    def __init__(
        self,
        backend: ModelBackend,
        policy: RetryPolicy,
        limiter: AdaptiveLimiter,
        *,
        on_retry: Callable[[int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.limiter = limiter
        self._on_retry = on_retry
        # Jitter needs no reproducibility; a seeded stream keeps tests deterministic.
        self._rng = rng or random.Random()

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        """One final response per request, in order: a success, a failure that is not
        transient, or the last failure once retries or the deadline ran out. Each carries
        `attempts` and the errors of its earlier attempts."""
        policy = self.policy
        started = time.monotonic()
        deadline = None if policy.deadline_s is None else started + policy.deadline_s
        final: list[ChoiceResponse | None] = [None] * len(requests)
        earlier: list[list[str]] = [[] for _ in requests]
        pending = list(range(len(requests)))
        attempt = 0
        while pending:
            attempt += 1
            responses = await self._attempt([requests[i] for i in pending], deadline)
            retry: list[int] = []
            asked: list[float] = []
            for index, response in zip(pending, responses, strict=True):
                if response.attempts != attempt or earlier[index] or response.attempt_errors:
                    # A first attempt already reads attempts=1 with no earlier errors:
                    # copying it would cost every call (bench/bench_throughput.py).
                    response = replace(
                        response, attempts=attempt, attempt_errors=tuple(earlier[index])
                    )
                final[index] = response  # kept also when the deadline ends a retried call
                transient = response.transient
                if response.error is None or transient is None or attempt > policy.max_retries:
                    continue
                retry.append(index)
                earlier[index].append(response.error)
                if transient.retry_after_s is not None:
                    asked.append(transient.retry_after_s)
            if not retry:
                break
            delay = policy.delay_s(attempt, max(asked) if asked else None, self._rng)
            if deadline is not None and time.monotonic() + delay >= deadline:
                for index in retry:
                    last = final[index]
                    assert last is not None
                    final[index] = replace(
                        last,
                        error=f"{last.error} (gave up: the call's {policy.deadline_s:g} s "
                        "deadline would pass before the next attempt)",
                        attempt_errors=last.attempt_errors,
                    )
                break
            if self._on_retry is not None:
                self._on_retry(len(retry))
            await asyncio.sleep(delay)
            pending = retry
        return [response for response in final if response is not None]

    async def _attempt(
        self, requests: Sequence[ChoiceRequest], deadline: float | None
    ) -> list[ChoiceResponse]:
        """One attempt at every request, holding one call slot, within the time limits."""
        limit = self.policy.attempt_timeout_s
        if limit is not None:
            limit = limit * TIMEOUT_GRACE + 1.0
        epoch = await self.limiter.acquire()
        outcome = Outcome.NEUTRAL
        try:
            if deadline is not None:
                remaining = max(deadline - time.monotonic(), 0.0)
                limit = remaining if limit is None else min(limit, remaining)
            if limit is None:
                responses = await self.backend.answer(requests)
            else:
                try:
                    async with asyncio.timeout(limit):
                        responses = await self.backend.answer(requests)
                except TimeoutError:
                    responses = _timed_out(len(requests), limit)
            if len(responses) != len(requests):
                raise RuntimeError(
                    f"the backend answered {len(responses)} of {len(requests)} requests"
                )
            outcome = _outcome(responses)
            return responses
        finally:
            self.limiter.release(epoch, outcome)
