"""A per-tenant throttle that keeps one process under Nomi's minute and concurrency limits.

All threads publishing for one tenant share one `TenantThrottle` (get it from `throttle_for`).
Each request takes a slot (at most ``concurrent`` at once) and a place in a sliding 60-second
window (at most ``per_minute`` starts). When Nomi reports few calls left
(``X-MinLimit-Remaining``), requests are spaced evenly instead of bursting into a 429. The
throttles of `throttle_for` also share the process's cap, `PROCESS_IN_FLIGHT` requests in flight
whatever their tenant, taken only once a request's start fits its tenant's window (a tenant
waiting on its minute limit never holds the other tenants' share).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

_WINDOW = 60.0

PROCESS_IN_FLIGHT = 20
"""Nomi requests one process has in flight at most, across tenants (`throttle_for`'s throttles).

The pipes a publish run keeps full: four organisations at Nomi's five each. A run prepares more
businesses at once than that (claims, resolutions, records), so the requests of the ones that are
sending fill the cap while the others get ready, instead of each batch's set-up leaving its share
of the pipes empty (docs/performance.md, eighth session)."""


class TenantThrottle:
    """Thread-safe limiter of request starts per minute and requests in flight for one tenant.

    Args:
        per_minute: Request starts allowed in any 60-second window (0 disables the check).
        concurrent: Requests allowed in flight at once (0 disables the check).
        low_water: When ``X-MinLimit-Remaining`` is at or below this, space requests evenly.
        shared: A cap shared with other tenants' throttles (requests in flight in all), taken
            after the tenant's own limits; None: no shared cap.
        clock: Monotonic clock (injectable for tests).
        sleep: Sleep function (injectable for tests).
    """

    def __init__(
        self,
        per_minute: int = 60,
        concurrent: int = 5,
        *,
        low_water: int = 5,
        shared: threading.Semaphore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.low_water = low_water
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()
        self._slots = threading.BoundedSemaphore(concurrent) if concurrent > 0 else None
        self._shared = shared
        self._not_before = 0.0
        self._remaining: int | None = None

    def __repr__(self) -> str:
        return f"TenantThrottle(per_minute={self.per_minute}, concurrent={self.concurrent})"

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: blocks until both limits allow another request to start."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            self._wait_for_window()
            try:
                yield
            finally:
                if self._shared is not None:
                    self._shared.release()
        finally:
            if self._slots is not None:
                self._slots.release()

    def _wait_for_window(self) -> None:
        """Block until a start fits the window and the shared cap has room, then record it.

        The shared cap is taken only when the window allows the start (and given back while the
        window makes it wait), so a tenant held back by its minute limit holds no shared slot.
        """
        shared = self._shared
        holding = shared is None
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    while self._starts and self._starts[0] <= now - _WINDOW:
                        self._starts.popleft()
                    wait = self._not_before - now
                    if self.per_minute > 0 and len(self._starts) >= self.per_minute:
                        wait = max(wait, self._starts[0] + _WINDOW - now)
                    if wait <= 0 and holding:
                        self._starts.append(now)
                        if self._spacing_active():
                            self._not_before = now + _WINDOW / max(self.per_minute, 1)
                        return
                if wait > 0:
                    if holding and shared is not None:
                        shared.release()
                        holding = False
                    self._sleep(min(wait, 1.0))
                elif shared is not None:
                    shared.acquire()  # outside the lock: other tenants' requests end meanwhile
                    holding = True
        except BaseException:
            if holding and shared is not None:
                shared.release()
            raise

    def _spacing_active(self) -> bool:
        """True while requests are being spaced out after a low remaining count."""
        return self._remaining is not None and self._remaining <= self.low_water

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's ``X-MinLimit-Remaining`` header."""
        raw = headers.get("X-MinLimit-Remaining")
        if raw is None:
            return
        try:
            remaining = int(raw)
        except ValueError:
            return
        with self._lock:
            self._remaining = remaining
            now = self._clock()
            if remaining <= 0:
                # Nomi says the window is spent: wait for it to roll over.
                self._not_before = max(self._not_before, now + _WINDOW / max(self.per_minute, 1))
            elif remaining > self.low_water:
                self._not_before = 0.0

    def backoff(self, seconds: float) -> None:
        """Hold every request of this tenant back for ``seconds`` (after a 429)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)


class ThrottleRegistry:
    """One `TenantThrottle` per tenant id, created on first use, all sharing one in-flight cap.

    Args:
        in_flight: Requests in flight across the registry's tenants (0: no shared cap).
    """

    def __init__(self, in_flight: int = PROCESS_IN_FLIGHT) -> None:
        self._lock = threading.Lock()
        self._throttles: dict[str, TenantThrottle] = {}
        self._shared = threading.BoundedSemaphore(in_flight) if in_flight > 0 else None

    def get(self, tenant_id: str, *, per_minute: int = 60, concurrent: int = 5) -> TenantThrottle:
        """The throttle of ``tenant_id``; limits only apply when it is first created."""
        with self._lock:
            throttle = self._throttles.get(tenant_id)
            if throttle is None:
                throttle = TenantThrottle(
                    per_minute=per_minute, concurrent=concurrent, shared=self._shared
                )
                self._throttles[tenant_id] = throttle
            return throttle


# Process-wide on purpose: every client of one tenant in this process shares one throttle.
_registry: ThrottleRegistry = ThrottleRegistry()


def throttle_for(tenant_id: str, *, per_minute: int = 60, concurrent: int = 5) -> TenantThrottle:
    """The process-wide throttle shared by every client of ``tenant_id``."""
    return _registry.get(tenant_id, per_minute=per_minute, concurrent=concurrent)
