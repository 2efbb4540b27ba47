"""Rate limits on the sandbox clock: per tenant (minute, day, in flight) and app-wide per minute."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from sandbox.clock import Clock
from sandbox.settings import SandboxSettings

MINUTE = 60.0
DAY = 86400.0


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0

    def roll(self, now: float, length: float) -> None:
        start = math.floor(now / length) * length
        if start != self.start:
            self.start, self.count = start, 0


@dataclass
class Refusal:
    """Why a request was refused: the ``X-Rate-Limit-Problem`` value and ``Retry-After``."""

    problem: str
    retry_after: int | None


@dataclass
class RateLimiter:
    """Counts requests in fixed windows; a limit of 0 is off."""

    settings: SandboxSettings
    clock: Clock
    _minute: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))
    _day: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))
    _app: _Window = field(default_factory=_Window)
    _token: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))
    _in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def _retry(self, window: _Window, length: float) -> int:
        return max(1, math.ceil(window.start + length - self.clock.time()))

    def acquire(self, tenant: str | None) -> Refusal | None:
        """Count one request (and hold a concurrency slot); or say why it is refused."""
        now, s = self.clock.time(), self.settings
        self._app.roll(now, MINUTE)
        if s.app_per_minute and self._app.count >= s.app_per_minute:
            return Refusal("app", self._retry(self._app, MINUTE))
        if tenant is not None:
            day, minute = self._day[tenant], self._minute[tenant]
            day.roll(now, DAY)
            minute.roll(now, MINUTE)
            if s.per_day and day.count >= s.per_day:
                return Refusal("day", self._retry(day, DAY))
            if s.per_minute and minute.count >= s.per_minute:
                return Refusal("minute", self._retry(minute, MINUTE))
            if s.concurrent and self._in_flight[tenant] >= s.concurrent:
                return Refusal("concurrent", None)
            day.count += 1
            minute.count += 1
            self._in_flight[tenant] += 1
        self._app.count += 1
        return None

    def release(self, tenant: str | None) -> None:
        """Give back the concurrency slot of a finished request."""
        if tenant is not None and self._in_flight[tenant] > 0:
            self._in_flight[tenant] -= 1

    def retry_after(self, problem: str, tenant: str | None) -> int | None:
        """A plausible ``Retry-After`` for an injected 429 of a kind."""
        now = self.clock.time()
        if problem == "day":
            window = self._day[tenant or ""]
            window.roll(now, DAY)
            return self._retry(window, DAY)
        if problem == "concurrent":
            return None
        window = self._app if problem == "app" else self._minute[tenant or ""]
        window.roll(now, MINUTE)
        return self._retry(window, MINUTE)

    def headers(self, tenant: str | None) -> list[tuple[bytes, bytes]]:
        """The ``X-*Limit-Remaining`` headers for a response."""
        s, out = self.settings, []
        if tenant is not None:
            if s.per_minute:
                left = max(0, s.per_minute - self._minute[tenant].count)
                out.append((b"x-minlimit-remaining", str(left).encode()))
            if s.per_day:
                left = max(0, s.per_day - self._day[tenant].count)
                out.append((b"x-daylimit-remaining", str(left).encode()))
        if s.app_per_minute:
            left = max(0, s.app_per_minute - self._app.count)
            out.append((b"x-appminlimit-remaining", str(left).encode()))
        return out

    def acquire_token(self, key: str) -> int | None:
        """Count one token-endpoint call for a key; the ``Retry-After`` when over the limit."""
        limit = self.settings.token_per_minute
        window = self._token[key]
        window.roll(self.clock.time(), MINUTE)
        if limit and window.count >= limit:
            return self._retry(window, MINUTE)
        window.count += 1
        return None
