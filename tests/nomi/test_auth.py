"""NomiAuth over httpx.MockTransport: bearer token, refresh after a 401, throttle per exchange."""

from __future__ import annotations

import httpx
import pytest

from nomi.auth import NomiAuth
from nomi.errors import ConnectionLostError
from nomi.throttle import TenantThrottle
from nomi.tokens import StaticTokenProvider

EXPIRED = {"status": 401, "detail": "TokenExpired: expired"}


class RotatingTokens:
    """Starts with ``old``; every refresh hands out ``new<n>``."""

    def __init__(self) -> None:
        self.current = "old"
        self.rejected: list[str] = []

    def access_token(self) -> str:
        return self.current

    def refresh_after_rejection(self, rejected_token: str) -> str:
        self.rejected.append(rejected_token)
        self.current = f"new{len(self.rejected)}"
        return self.current


def http_on(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_the_request_carries_the_providers_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    with http_on(httpx.MockTransport(handler)) as http:
        http.get("http://nomi.test/x", auth=NomiAuth(StaticTokenProvider("tok")))
    assert seen == ["Bearer tok"]


def test_a_refused_token_is_refreshed_and_the_request_sent_again() -> None:
    tokens = RotatingTokens()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json=EXPIRED)
        return httpx.Response(200)

    auth = NomiAuth(tokens)
    with http_on(httpx.MockTransport(handler)) as http:
        response = http.get("http://nomi.test/x", auth=auth)
    assert response.status_code == 200
    assert seen == ["Bearer old", "Bearer new1"]
    assert tokens.rejected == ["old"]
    assert auth.refreshes == 1


def test_the_refresh_budget_spans_every_flow_of_one_auth() -> None:
    tokens = RotatingTokens()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=EXPIRED)

    auth = NomiAuth(tokens, max_refreshes=2)
    with http_on(httpx.MockTransport(handler)) as http:
        assert http.get("http://nomi.test/x", auth=auth).status_code == 401
        assert http.get("http://nomi.test/x", auth=auth).status_code == 401
    assert tokens.rejected == ["old", "new1"]
    assert auth.refreshes == 2


def test_a_provider_that_cannot_refresh_raises_connection_lost() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=EXPIRED)

    with (
        http_on(httpx.MockTransport(handler)) as http,
        pytest.raises(ConnectionLostError),
    ):
        http.get("http://nomi.test/x", auth=NomiAuth(StaticTokenProvider("tok")))


def test_each_exchange_takes_its_own_throttle_start_and_teaches_the_throttle() -> None:
    tokens = RotatingTokens()
    throttle = TenantThrottle(per_minute=10, concurrent=1)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json=EXPIRED)
        return httpx.Response(200, headers={"X-MinLimit-Remaining": "3"})

    with http_on(httpx.MockTransport(handler)) as http:
        http.get("http://nomi.test/x", auth=NomiAuth(tokens, throttle))
    assert len(throttle._starts) == 2
    assert throttle._remaining == 3


def test_a_network_failure_frees_the_throttle_slot() -> None:
    throttle = TenantThrottle(per_minute=0, concurrent=1)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with http_on(httpx.MockTransport(handler)) as http, pytest.raises(httpx.ReadTimeout):
        http.get("http://nomi.test/x", auth=NomiAuth(StaticTokenProvider("t"), throttle))
    assert throttle._slots is not None
    assert throttle._slots.acquire(blocking=False)  # the one slot is free again
