"""Rate limits of every kind and their headers."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import ACCOUNTANT, BSD, HCC


def test_minute_limit_counts_down_then_429_with_retry_after(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.admin.patch("/settings", json={"per_minute": 3, "per_day": 100, "app_per_minute": 50})
    sandbox.admin.post("/clock/advance", json={"seconds": 60})  # a fresh window
    remaining = [api.get("/users").headers["x-minlimit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = api.get("/users")
    assert refused.status_code == 429
    assert refused.headers["x-rate-limit-problem"] == "minute"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-daylimit-remaining"] == "97"
    assert "x-appminlimit-remaining" in refused.headers
    sandbox.admin.post("/clock/advance", json={"seconds": int(refused.headers["retry-after"])})
    assert api.get("/users").status_code == 200


def test_day_limit_has_a_long_retry_after(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.admin.patch("/settings", json={"per_day": 2})
    assert api.get("/users").status_code == 200
    assert api.get("/users").headers["x-daylimit-remaining"] == "0"
    refused = api.get("/users")
    assert (refused.status_code, refused.headers["x-rate-limit-problem"]) == (429, "day")
    assert int(refused.headers["retry-after"]) > 60


def test_the_sixth_concurrent_request_is_refused_without_retry_after(
    sandbox: SandboxHandle,
    api: httpx.Client,
) -> None:
    sandbox.admin.patch("/settings", json={"concurrent": 2})
    sandbox.fault("latency", path="/api/v1/users", params={"seconds": 0.8})
    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(api.get("/users"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429]
    refused = next(r for r in results if r.status_code == 429)
    assert refused.headers["x-rate-limit-problem"] == "concurrent"
    assert "retry-after" not in refused.headers
    sandbox.clear_faults()
    assert api.get("/users").status_code == 200


def test_the_app_limit_spans_tenants(sandbox: SandboxHandle, connect: Any, api_for: Any) -> None:
    owner = api_for(connect()["access_token"], BSD)
    accountant = api_for(connect(login=ACCOUNTANT, tenant=HCC)["access_token"], HCC)
    sandbox.admin.post("/clock/advance", json={"seconds": 60})
    sandbox.admin.patch("/settings", json={"app_per_minute": 2})
    assert owner.get("/users").headers["x-appminlimit-remaining"] == "1"
    assert accountant.get("/users").status_code == 200
    refused = owner.get("/users")
    assert (refused.status_code, refused.headers["x-rate-limit-problem"]) == (429, "app")
    assert "retry-after" in refused.headers


def test_limits_off_send_no_remaining_headers(api: httpx.Client) -> None:
    response = api.get("/users")
    assert response.status_code == 200
    assert "x-minlimit-remaining" not in response.headers
