"""TenantThrottle keeps starts under the minute limit and in-flight requests under the cap."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nomi.throttle import TenantThrottle, ThrottleRegistry, throttle_for


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_starts_beyond_the_minute_limit_wait_for_the_window_to_roll() -> None:
    fake = FakeTime()
    throttle = TenantThrottle(per_minute=3, concurrent=0, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(7):
        with throttle.slot():
            starts.append(fake.now)
    assert starts[:3] == [1000.0] * 3
    assert starts[3] >= 1060.0
    assert starts[6] >= 1120.0
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] >= 60.0


def test_a_low_remaining_count_spaces_requests_evenly() -> None:
    fake = FakeTime()
    throttle = TenantThrottle(per_minute=60, concurrent=0, clock=fake.clock, sleep=fake.sleep)
    throttle.observe({"X-MinLimit-Remaining": "2"})
    starts = []
    for _ in range(3):
        with throttle.slot():
            starts.append(fake.now)
    assert starts[1] - starts[0] >= 1.0
    assert starts[2] - starts[1] >= 1.0
    throttle.observe({"X-MinLimit-Remaining": "50"})
    with throttle.slot():
        starts.append(fake.now)
    assert starts[3] - starts[2] < 1.0 + 1e-9


def test_no_more_than_the_concurrent_limit_are_in_flight() -> None:
    throttle = TenantThrottle(per_minute=0, concurrent=3)
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def call(_: int) -> None:
        nonlocal in_flight, peak
        with throttle.slot():
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.01)
            with lock:
                in_flight -= 1

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(call, range(48)))
    assert peak == 3


def test_one_throttle_per_tenant_per_process() -> None:
    assert throttle_for("tenant-a") is throttle_for("tenant-a")
    assert throttle_for("tenant-a") is not throttle_for("tenant-b")


def test_tenants_of_one_registry_share_its_cap_on_requests_in_flight() -> None:
    registry = ThrottleRegistry(in_flight=4)
    throttles = [registry.get(t, per_minute=0, concurrent=3) for t in ("a", "b", "c")]
    lock = threading.Lock()
    in_flight = {"all": 0, "a": 0, "b": 0, "c": 0}
    peak = {"all": 0, "a": 0, "b": 0, "c": 0}

    def call(n: int) -> None:
        name = "abc"[n % 3]
        with throttles[n % 3].slot():
            with lock:
                for key in ("all", name):
                    in_flight[key] += 1
                    peak[key] = max(peak[key], in_flight[key])
            time.sleep(0.01)
            with lock:
                for key in ("all", name):
                    in_flight[key] -= 1

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(call, range(72)))
    assert peak["all"] == 4  # the cap is reached, never passed
    assert all(peak[t] <= 3 for t in "abc")


def test_a_tenant_waiting_for_its_minute_window_holds_none_of_the_shared_cap() -> None:
    """Otherwise a tenant held back by its own limit would stop the other tenants sending."""
    shared = threading.BoundedSemaphore(1)
    fake = FakeTime()
    sleeping, wake = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        sleeping.set()
        wake.wait(10)
        fake.now += seconds

    limited = TenantThrottle(
        per_minute=1, concurrent=0, shared=shared, clock=fake.clock, sleep=sleep
    )
    other = TenantThrottle(per_minute=0, concurrent=0, shared=shared)
    with limited.slot():
        pass  # the minute's one start
    second = threading.Thread(target=lambda: limited.slot().__enter__())
    second.start()
    assert sleeping.wait(5), "the limited tenant did not wait for its window"
    got = shared.acquire(timeout=2)  # what another tenant's request needs
    assert got, "the waiting tenant held the shared cap"
    shared.release()
    with other.slot():
        pass
    wake.set()
    second.join(10)
    assert not second.is_alive()
