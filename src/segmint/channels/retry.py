"""Shared HTTP retry policy for vendor channels: exponential backoff with full jitter, Retry-After honoured."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Full-jitter delay before retry number `attempt` (1-based), at least Retry-After, at most `cap`."""
    delay = random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
    return min(cap, max(delay, retry_after)) if retry_after is not None else delay


def is_retryable_status(status: int) -> bool:
    """429 and 5xx are worth retrying; other 4xx are not."""
    return status == 429 or status >= 500
