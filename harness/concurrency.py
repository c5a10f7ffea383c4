"""Per-model concurrency that adapts to rate limits (AIMD, as TCP does with congestion).

A model starts at its configured `concurrency`. A rate-limited answer (HTTP 429) halves the
number of calls allowed in flight; every successful answer adds 1/limit, so a full window of
successes adds one slot, back up to the configured ceiling. Only one halving happens per
window: the 429s of calls that were already in flight when the limit was last cut say
nothing new about the lower limit, and counting each of them would collapse it to 1 after
one burst. Windows are numbered (`epoch`); a call remembers the epoch it started in.

The limiter is used from one event loop and never blocks it: `acquire` returns at once
while a slot is free (the hot path of a zero-latency server), and otherwise waits on a
future that `release` resolves in first-come order.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections import deque
from collections.abc import Callable


class Outcome(enum.Enum):
    """What a finished attempt says about the provider's capacity."""

    SUCCEEDED = "succeeded"
    RATE_LIMITED = "rate_limited"
    NEUTRAL = "neutral"
    """Failed for another reason (or was cancelled): no signal either way."""


class AdaptiveLimiter:
    """An asyncio semaphore whose size follows additive-increase / multiplicative-decrease."""

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        decrease: float = 0.5,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        if maximum < 1 or not 1 <= minimum <= maximum:
            raise ValueError(f"bad concurrency bounds: minimum {minimum}, maximum {maximum}")
        if not 0.0 < decrease < 1.0:
            raise ValueError("decrease must be between 0 and 1")
        self.maximum = maximum
        self.minimum = minimum
        self._decrease = decrease
        self._limit = float(maximum)
        self._in_flight = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._on_change = on_change

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        return max(self.minimum, math.floor(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to pass back to `release`."""
        if self._in_flight < self.limit and not self._waiters:
            self._in_flight += 1
            return self._epoch
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we were cancelled: give it back.
                self.release(waiter.result(), Outcome.NEUTRAL)
            elif waiter in self._waiters:  # `_wake` may have dropped it already
                self._waiters.remove(waiter)
            raise

    def release(self, epoch: int, outcome: Outcome) -> None:
        """Free a slot and adapt the limit to how the attempt went."""
        self._in_flight -= 1
        before = self.limit
        if outcome is Outcome.RATE_LIMITED:
            if epoch == self._epoch:
                self._limit = max(float(self.minimum), self._limit * self._decrease)
                self._epoch += 1
        elif outcome is Outcome.SUCCEEDED and self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)
        if self.limit != before and self._on_change is not None:
            self._on_change(self.limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while queued
                continue
            self._in_flight += 1
            waiter.set_result(self._epoch)
