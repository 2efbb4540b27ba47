"""A settable clock: real time plus an offset that tests move forward."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The sandbox's notion of now; ``advance`` moves it forward without sleeping."""

    def __init__(self) -> None:
        self._offset = 0.0

    def time(self) -> float:
        """Seconds since the epoch on the sandbox clock."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """The sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, for a negative value)."""
        self._offset += seconds

    @property
    def offset(self) -> float:
        """How far the clock is ahead of real time, in seconds."""
        return self._offset


def iso(ts: float) -> str:
    """An epoch time as ISO-8601 UTC with microseconds and ``Z`` (sorts as text)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> float:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC) into epoch seconds.

    Raises:
        ValueError: the text is not a timestamp.
    """
    text = value.strip()
    if "T" in text:
        text = text.replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
