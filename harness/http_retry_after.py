"""Reading the wait an HTTP response asks for (Retry-After), for any client of any API.

A contract shared by the runner's retry policy (`harness.retry`) and the API backends, which
attach the wait to a failed attempt (`harness.types.Transient.retry_after_s`): backends read
headers here without depending on the engine that retries.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds a response asks the client to wait: `retry-after-ms` (OpenAI's), else
    `retry-after` in seconds or as an HTTP date; None when absent or unreadable."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
