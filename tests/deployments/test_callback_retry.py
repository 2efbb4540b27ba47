"""How long the OAuth callback keeps trying Prefect: bounded, and only for passing failures."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES

import deployments.callback_handover as handover_module
from deployments.callback_handover import PrefectRetry, PrefectUnavailableError, call_prefect

REQUEST = httpx.Request("POST", "http://127.0.0.1:4200/api/block_documents/")


class Clock:
    """A fake monotonic clock that ``time.sleep`` moves forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(handover_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(handover_module.time, "sleep", fake.sleep)
    return fake


def failing(times: int, exc: Callable[[], Exception], calls: list[int]) -> Callable[[], str]:
    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc()
        return "done"

    return call


def refused() -> Exception:
    return httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST)


def status(code: int) -> Callable[[], Exception]:
    return lambda: httpx.HTTPStatusError(
        "busy", request=REQUEST, response=httpx.Response(code, request=REQUEST)
    )


def test_passing_failures_are_retried_with_a_growing_capped_backoff(clock: Clock) -> None:
    calls: list[int] = []
    assert call_prefect(PrefectRetry(), "park the code", failing(5, refused, calls)) == "done"
    assert len(calls) == 6
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_the_default_budget_is_a_few_seconds_then_prefect_is_called_unavailable(
    clock: Clock,
) -> None:
    calls: list[int] = []
    with pytest.raises(PrefectUnavailableError, match="could not park the code"):
        call_prefect(PrefectRetry(), "park the code", failing(100, refused, calls))
    assert len(calls) == PrefectRetry().attempts
    assert sum(clock.sleeps) <= PrefectRetry().budget_seconds <= 10


def test_no_try_starts_after_the_budget(clock: Clock) -> None:
    def slow_refusal() -> str:
        clock.now += 3  # each try hangs 3 s before failing
        raise refused()

    with pytest.raises(PrefectUnavailableError):
        call_prefect(PrefectRetry(attempts=10, budget_seconds=8), "resume the run", slow_refusal)
    assert clock.now <= 8 + 3


@pytest.mark.parametrize("code", [500, 502, 503, 408, 429])
def test_prefect_busy_is_retried(clock: Clock, code: int) -> None:
    calls: list[int] = []
    assert call_prefect(PrefectRetry(), "resume the run", failing(1, status(code), calls)) == "done"
    assert len(calls) == 2


@pytest.mark.parametrize(
    "exc", [status(404), status(422), lambda: ValueError("Unable to find block document")]
)
def test_other_failures_are_not_retried(clock: Clock, exc: Callable[[], Exception]) -> None:
    calls: list[int] = []
    with pytest.raises((httpx.HTTPStatusError, ValueError)):
        call_prefect(PrefectRetry(), "park the code", failing(1, exc, calls))
    assert len(calls) == 1
    assert clock.sleeps == []


def test_prefects_own_client_retries_are_off_inside_the_budget(clock: Clock) -> None:
    seen: list[tuple[int, float]] = []

    def call() -> None:
        seen.append((PREFECT_CLIENT_MAX_RETRIES.value(), PREFECT_API_REQUEST_TIMEOUT.value()))

    call_prefect(PrefectRetry(request_timeout=7.0), "resume the run", call)
    assert seen == [(0, 7.0)]
