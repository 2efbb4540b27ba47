"""When and how long the client waits before trying a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the client's own retries (GETs and writes carrying an idempotency key only).

    Attributes:
        max_attempts: Attempts in all, the first included.
        base_delay: First backoff step in seconds; step n waits up to ``base_delay * 2**n``.
        max_delay: Cap of one backoff step.
        max_retry_after: Longest ``Retry-After`` honoured by sleeping; a longer one is raised.
        max_total: Give up once this many seconds have passed since the first attempt.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    max_total: float = 180.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt`` (0-based)."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None when the server asks for too long."""
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        return retry_after


NO_RETRY = RetryPolicy(max_attempts=1)
