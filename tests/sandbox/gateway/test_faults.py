"""Every fault switch of the admin API, seen from a client over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import BSD, HCC, exchange, get_code, ids, refresh


@pytest.fixture
def body(api: httpx.Client) -> dict[str, Any]:
    """A valid expense body."""
    cats, taxes = ids(api, "/categories"), ids(api, "/tax-rates")
    return {
        "date": "2025-02-01",
        "total": "12.00",
        "tax_amount": "2.00",
        "tax_rate_id": taxes["STD20"],
        "category_id": cats["453"],
        "source_id": "item-f",
    }


def expenses(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    """Every expense created through the API."""
    return sandbox.admin.get("/records", params={"kind": "expense"}).json()


@pytest.mark.parametrize(
    ("name", "problem", "retry"),
    [
        ("rate_limit_minute", "minute", True),
        ("rate_limit_day", "day", True),
        ("rate_limit_concurrent", "concurrent", False),
        ("rate_limit_app", "app", True),
    ],
)
def test_injected_429s(
    sandbox: SandboxHandle, api: httpx.Client, name: str, problem: str, retry: bool
) -> None:
    sandbox.fault(name, tenant_id=BSD, count=1)
    refused = api.get("/suppliers")
    assert refused.status_code == 429
    assert refused.headers["x-rate-limit-problem"] == problem
    assert ("retry-after" in refused.headers) is retry
    assert api.get("/suppliers").status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_have_html_bodies(
    sandbox: SandboxHandle, api: httpx.Client, status: int
) -> None:
    sandbox.fault("server_error", path="/api/v1/tax-rates", count=1, params={"status": status})
    response = api.get("/tax-rates")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_server_error_on_the_token_endpoint(sandbox: SandboxHandle) -> None:
    sandbox.fault("server_error", path="/oauth/token", count=1, params={"status": 502})
    code, verifier = get_code(sandbox)
    assert exchange(sandbox, code, verifier).status_code == 502
    assert exchange(sandbox, code, verifier).status_code == 200


def test_a_fault_after_n_lets_n_matching_requests_pass_first(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.fault("server_error", path="/api/v1/tax-rates", after=2, count=1)
    assert api.get("/users").status_code == 200  # not matching: not counted
    statuses = [api.get("/tax-rates").status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


def test_faults_are_per_tenant_and_method(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.fault("server_error", tenant_id=HCC)
    sandbox.fault("server_error", method="POST")
    assert api.get("/suppliers").status_code == 200


def test_latency_delays_the_response(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.fault("latency", path="/api/v1/users", count=1, params={"seconds": 0.5})
    started = time.perf_counter()
    assert api.get("/users").status_code == 200
    assert time.perf_counter() - started >= 0.5


def test_connection_reset_is_a_transport_error_and_writes_nothing(
    sandbox: SandboxHandle,
    api: httpx.Client,
    body: dict[str, Any],
) -> None:
    sandbox.fault("connection_reset", method="POST", path="/api/v1/expenses", count=1)
    with pytest.raises(httpx.TransportError):
        api.post("/expenses", json=body, headers={"Idempotency-Key": "r-1"})
    assert expenses(sandbox) == []
    assert api.post("/expenses", json=body, headers={"Idempotency-Key": "r-1"}).status_code == 201


def test_commit_then_drop_commits_and_the_retry_replays(
    sandbox: SandboxHandle,
    api: httpx.Client,
    body: dict[str, Any],
) -> None:
    sandbox.fault("commit_then_drop", method="POST", path="/api/v1/expenses", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/expenses", json=body, headers={"Idempotency-Key": "d-1"})
    [created] = expenses(sandbox)
    retry = api.post("/expenses", json=body, headers={"Idempotency-Key": "d-1"})
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == created["id"]
    assert (
        api.get("/expenses", params={"source_id": "item-f"}).json()["items"][0]["id"]
        == (created["id"])
    )


def test_commit_then_drop_without_a_key_leaves_a_record_to_find(
    sandbox: SandboxHandle,
    api: httpx.Client,
    body: dict[str, Any],
) -> None:
    sandbox.fault("commit_then_drop", method="POST", count=1)
    with pytest.raises(httpx.TransportError):
        api.post("/expenses", json=body)
    assert len(api.get("/expenses", params={"source_id": "item-f"}).json()["items"]) == 1


def test_token_rejected_before_expiry_then_accepted(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.fault("token_rejected", tenant_id=BSD, count=1)
    rejected = api.get("/suppliers")
    assert rejected.status_code == 401
    assert rejected.json()["detail"].startswith("TokenExpired")
    assert api.get("/suppliers").status_code == 200
    assert sandbox.admin.get("/tokens").json()["rejected"] == 1


def test_refresh_revoked_makes_the_refresh_invalid_grant(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    sandbox.fault("refresh_revoked", tenant_id=BSD, path="/oauth/token", count=1)
    response = refresh(sandbox, tokens["refresh_token"])
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token revoked",
    }


def test_consent_expired_through_an_api_call(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    sandbox.fault("consent_expired", tenant_id=BSD, count=1)
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "Nomi-Tenant-Id": BSD}
    response = httpx.get(f"{sandbox.api_url}/suppliers", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "TokenExpired: the consent has expired"
    assert (
        "consent expired" in refresh(sandbox, tokens["refresh_token"]).json()["error_description"]
    )


def test_attachment_fails_once_after_create(
    sandbox: SandboxHandle, api: httpx.Client, body: dict[str, Any]
) -> None:
    sandbox.fault("attachment_fail_once", tenant_id=BSD)
    expense_id = api.post("/expenses", json=body).json()["id"]
    url = f"/expenses/{expense_id}/attachments/r.pdf"
    headers = {"Content-Type": "application/pdf", "Idempotency-Key": "a-1"}
    first = api.put(url, content=b"%PDF", headers=headers)
    assert (first.status_code, first.headers["retry-after"]) == (503, "1")
    assert api.put(url, content=b"%PDF", headers=headers).status_code == 201


@pytest.mark.parametrize("code", ["duplicate_number", "period_locked", "account_archived"])
def test_validation_fault_rejects_with_the_code(
    sandbox: SandboxHandle, api: httpx.Client, body: dict[str, Any], code: str
) -> None:
    sandbox.fault("validation", method="POST", count=1, params={"code": code})
    rejected = api.post("/expenses", json=body)
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["code"] == code
    assert api.post("/expenses", json=body).status_code == 201


def test_count_and_clear(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.fault("server_error", count=2)
    assert [api.get("/users").status_code for _ in range(3)] == [500, 500, 200]
    sandbox.fault("server_error")
    assert sandbox.admin.get("/faults").json()[0]["fault"] == "server_error"
    sandbox.clear_faults()
    assert api.get("/users").status_code == 200
    assert sandbox.admin.post("/faults", json={"fault": "nonsense"}).status_code == 400


def test_commit_then_drop_on_the_token_endpoint_and_the_replay_in_grace(
    sandbox: SandboxHandle,
) -> None:
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    sandbox.fault("commit_then_drop", path="/oauth/token", count=1)
    with pytest.raises(httpx.TransportError):
        refresh(sandbox, tokens["refresh_token"])
    again = refresh(sandbox, tokens["refresh_token"])
    assert again.status_code == 200
    assert sandbox.admin.get("/tokens").json()["replayed"] == 1
    journal = sandbox.admin.get("/requests", params={"limit": 2}).json()
    assert (journal[0]["fault"], journal[0]["status"]) == ("commit_then_drop", 200)


def test_api_only_faults_leave_the_token_endpoint_alone(sandbox: SandboxHandle) -> None:
    sandbox.fault("validation", method="POST", params={"code": "period_locked"})
    sandbox.fault("token_rejected", method="POST")
    code, verifier = get_code(sandbox)
    assert exchange(sandbox, code, verifier).status_code == 200
