"""Idempotency-Key: replay, different body, in flight, expiry after a day, what is not stored."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import BSD, ids


@pytest.fixture
def body(api: httpx.Client) -> dict[str, Any]:
    """A valid expense body."""
    cats, taxes = ids(api, "/categories"), ids(api, "/tax-rates")
    return {
        "date": "2025-02-01",
        "total": "60.00",
        "tax_amount": "10.00",
        "tax_rate_id": taxes["STD20"],
        "category_id": cats["453"],
        "source_id": "item-7",
    }


def post(api: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
    """Create an expense with a key."""
    return api.post("/expenses", json=body, headers={"Idempotency-Key": key})


def expenses(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    """Every expense created."""
    return sandbox.admin.get("/records", params={"kind": "expense"}).json()


def test_same_key_and_body_replays_the_first_response(
    sandbox: SandboxHandle, api: httpx.Client, body: dict[str, Any]
) -> None:
    first = post(api, body, "key-1")
    second = post(api, {**body}, "key-1")
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(expenses(sandbox)) == 1
    assert sandbox.admin.get("/duplicates").json() == {"expenses": {}, "sales_invoices": {}}


def test_same_key_with_a_different_body_is_422(api: httpx.Client, body: dict[str, Any]) -> None:
    assert post(api, body, "key-2").status_code == 201
    other = post(api, {**body, "total": "61.00"}, "key-2")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"


def test_same_key_while_the_first_is_in_flight_is_409(
    sandbox: SandboxHandle, api: httpx.Client, body: dict[str, Any]
) -> None:
    sandbox.fault("latency", method="POST", count=1, params={"seconds": 1.0})
    results: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: results.append(post(api, body, "key-3")))
    slow.start()
    time.sleep(0.3)
    second = post(api, body, "key-3")
    slow.join()
    assert second.status_code == 409
    assert second.json()["errors"][0]["code"] == "idempotency_in_flight"
    assert results[0].status_code == 201
    assert post(api, body, "key-3").headers["idempotent-replayed"] == "true"


def test_keys_are_kept_24_hours_on_the_sandbox_clock(
    sandbox: SandboxHandle, connect: Any, api_for: Any, body: dict[str, Any]
) -> None:
    sandbox.admin.patch("/settings", json={"access_token_ttl": 3 * 86400})
    api = api_for(connect()["access_token"])
    post(api, body, "key-4")
    sandbox.admin.post("/clock/advance", json={"seconds": 23 * 3600})
    assert post(api, body, "key-4").headers.get("idempotent-replayed") == "true"
    sandbox.admin.post("/clock/advance", json={"seconds": 2 * 3600})
    again = post(api, body, "key-4")
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert len(expenses(sandbox)) == 2


def test_keys_are_per_tenant(
    sandbox: SandboxHandle, connect: Any, api_for: Any, body: dict[str, Any]
) -> None:
    from tests.sandbox.conftest import ACCOUNTANT, HCC

    owner = api_for(connect()["access_token"], BSD)
    accountant = api_for(connect(login=ACCOUNTANT, tenant=HCC)["access_token"], HCC)
    cats, taxes = ids(accountant, "/categories"), ids(accountant, "/tax-rates")
    assert post(owner, body, "shared").status_code == 201
    other = {**body, "category_id": cats["453"], "tax_rate_id": taxes["STD20"]}
    response = post(accountant, other, "shared")
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers


def test_a_server_error_is_not_stored_so_the_retry_creates_once(
    sandbox: SandboxHandle,
    api: httpx.Client,
    body: dict[str, Any],
) -> None:
    sandbox.fault("server_error", method="POST", count=1, params={"status": 503})
    assert post(api, body, "key-5").status_code == 503
    retry = post(api, body, "key-5")
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert len(expenses(sandbox)) == 1


def test_a_validation_rejection_is_replayed_too(api: httpx.Client, body: dict[str, Any]) -> None:
    bad = {**body, "tax_amount": "1.00"}
    assert post(api, bad, "key-6").status_code == 400
    replay = post(api, bad, "key-6")
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (400, "true")


def test_attachments_honour_keys(
    api: httpx.Client, body: dict[str, Any], sandbox: SandboxHandle
) -> None:
    expense_id = post(api, body, "key-7").json()["id"]
    url = f"/expenses/{expense_id}/attachments/r.png"
    headers = {"Content-Type": "image/png", "Idempotency-Key": "att-1"}
    assert api.put(url, content=b"png", headers=headers).status_code == 201
    replay = api.put(url, content=b"png", headers=headers)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    assert api.put(url, content=b"other", headers=headers).status_code == 422


def test_a_replay_needs_a_valid_token(
    sandbox: SandboxHandle, api: httpx.Client, body: dict[str, Any]
) -> None:
    assert post(api, body, "key-8").status_code == 201
    stranger = httpx.post(
        f"{sandbox.api_url}/expenses",
        json=body,
        headers={
            "Idempotency-Key": "key-8",
            "Nomi-Tenant-Id": BSD,
            "Authorization": "Bearer forged",
        },
    )
    assert stranger.status_code == 401
    assert "idempotent-replayed" not in stranger.headers
