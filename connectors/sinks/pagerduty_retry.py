"""PagerDuty delivery's retry rule: how long to wait after a failed request, and the error that ends trying.

Pure: :class:`RetryPolicy` turns an attempt number and a ``Retry-After`` header into a wait (or
a stop), :class:`DeliveryError` carries what PagerDuty answered and whether waiting could help.
The sender (``connectors.sinks.pagerduty``) is the only caller that sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one event is retried on 429 / 5xx / network errors within a run."""

    max_attempts: int = 4
    base_delay: float = 1.0  # backoff without Retry-After: base_delay * 2 ** (attempt - 1)
    max_wait: float = 30.0  # never block longer than this once; a longer Retry-After defers the event

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (self.base_delay >= 0 and math.isfinite(self.base_delay)):
            raise ValueError(f"base_delay must be a finite number >= 0, got {self.base_delay}")
        if not (self.max_wait > 0 and math.isfinite(self.max_wait)):
            raise ValueError(f"max_wait must be a finite number > 0, got {self.max_wait}")

    def wait_before_retry(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based), or None to stop trying now.

        ``Retry-After`` wins over the backoff; one beyond ``max_wait`` stops (the event stays
        pending for the next run) rather than holding the flow.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return None if retry_after > self.max_wait else max(retry_after, 0.0)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_wait)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP-date (RFC 9110); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class DeliveryError(RuntimeError):
    """One event was not delivered. ``.status`` is the last HTTP status (None: network error),
    ``.retryable`` whether PagerDuty was throttling or unavailable (vs. rejecting the event),
    ``.attempts`` how many requests were made, ``.detail`` PagerDuty's answer."""

    def __init__(self, what: str, status: int | None, detail: str, attempts: int, *, retryable: bool) -> None:
        self.what, self.status, self.detail, self.attempts, self.retryable = (
            what,
            status,
            detail,
            attempts,
            retryable,
        )
        answer = "no response" if status is None else f"HTTP {status}"
        super().__init__(f"PagerDuty {what}: {answer} after {attempts} attempt(s): {detail}")
