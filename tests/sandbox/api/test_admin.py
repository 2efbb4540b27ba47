"""The admin API: present only in test mode; clock, settings, bulk seeding, inspection."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.sandbox.conftest import BSD, HCC, NWJ, OSY, PPL


def test_admin_routes_do_not_exist_outside_test_mode() -> None:
    with running_sandbox(SandboxSettings(test_mode=False)) as sb:
        for method, path in [
            ("GET", "/_admin/tenants"),
            ("POST", "/_admin/faults"),
            ("GET", "/_admin/records"),
            ("POST", "/_admin/clock/advance"),
        ]:
            assert httpx.request(method, sb.base_url + path).status_code == 404
        assert httpx.get(f"{sb.base_url}/openapi.json").status_code == 200


def test_tenants_lists_the_five_seeded_organisations(sandbox: SandboxHandle) -> None:
    tenants = {t["name"]: t for t in sandbox.admin.get("/_admin/tenants").json()}
    assert {name: t["id"] for name, t in tenants.items()} == {
        "Bright Smile Dental Ltd": BSD,
        "Harbour Coffee Co": HCC,
        "Northwind Joinery Ltd": NWJ,
        "Ostsee Yachting Ltd": OSY,
        "Pennine Print Ltd": PPL,
    }
    assert (
        tenants["Ostsee Yachting Ltd"]["currency"],
        tenants["Pennine Print Ltd"]["lock_date"],
    ) == (
        "EUR",
        "2025-12-31",
    )


def test_the_clock_moves_forward(sandbox: SandboxHandle) -> None:
    before = sandbox.admin.get("/clock").json()
    after = sandbox.admin.post("/clock/advance", json={"seconds": 86400}).json()
    assert after["offset_seconds"] - before["offset_seconds"] == 86400
    assert after["now"][:10] > before["now"][:10]


def test_settings_patch_validates(sandbox: SandboxHandle) -> None:
    changed = sandbox.admin.patch("/settings", json={"per_minute": 7, "access_token_ttl": 5})
    assert (changed.json()["per_minute"], changed.json()["access_token_ttl"]) == (7, 5)
    assert sandbox.admin.patch("/settings", json={"per_minute": -1}).status_code == 400
    assert sandbox.admin.patch("/settings", json={"bogus": 1}).status_code == 400
    assert sandbox.admin.patch("/settings", json={"test_mode": False}).status_code == 400


def test_bulk_seeding_100000_suppliers_takes_seconds(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    started = time.perf_counter()
    created = sandbox.admin.post(f"/tenants/{HCC}/suppliers", json={"count": 100_000}).json()
    assert time.perf_counter() - started < 15
    assert created == {"created": 100_000, "total": 100_006}
    page = sandbox.admin.post(f"/tenants/{BSD}/suppliers", json={"count": 10})
    assert page.json()["total"] == 18
    assert api.get("/suppliers", params={"page_size": 1}).json()["pagination"]["item_count"] == 17


def test_changing_a_record_bumps_updated_at_and_version(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    supplier = api.get("/suppliers").json()["items"][0]
    changed = sandbox.admin.patch(
        f"/tenants/{BSD}/suppliers/{supplier['id']}", json={"name": "Renamed Ltd"}
    ).json()
    assert changed["version"] == supplier["version"] + 1
    assert changed["updated_at"] > supplier["updated_at"]
    assert sandbox.admin.patch(f"/tenants/{BSD}/nonsense/x", json={}).status_code == 404
    assert sandbox.admin.patch(f"/tenants/{BSD}/suppliers/missing", json={}).status_code == 404


def test_records_requests_duplicates_tokens_and_reset(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    cats = {c["code"]: c["id"] for c in api.get("/categories").json()["items"]}
    body: dict[str, Any] = {
        "date": "2025-01-10",
        "total": "5.00",
        "category_id": cats["453"],
        "source_id": "same-item",
    }
    for key in ("k1", "k2"):  # two keys for one item: a real duplicate
        assert api.post("/expenses", json=body, headers={"Idempotency-Key": key}).status_code == 201
    assert sandbox.admin.get("/duplicates").json()["expenses"] == {"same-item": 2}
    records = sandbox.admin.get("/records", params={"tenant_id": BSD, "kind": "expense"}).json()
    assert {r["tenant_id"] for r in records} == {BSD}
    assert len(records) == 2
    assert sandbox.admin.get("/records", params={"kind": "bogus"}).status_code == 400
    seen = sandbox.admin.get("/requests", params={"limit": 2}).json()
    assert [(r["method"], r["path"], r["status"], r["idempotency_key"]) for r in seen] == [
        ("POST", "/api/v1/expenses", 201, "k1"),
        ("POST", "/api/v1/expenses", 201, "k2"),
    ]
    assert seen[0]["tenant_id"] == BSD
    assert sandbox.admin.get("/tokens").json()["issued"] == 1
    sandbox.admin.post("/reset-stats")
    assert sandbox.admin.get("/requests").json() == []
    assert sandbox.admin.get("/tokens").json()["issued"] == 0


def test_secrets_are_not_in_the_request_journal(sandbox: SandboxHandle, connect: Any) -> None:
    tokens = connect()
    journal = sandbox.admin.get("/requests").text
    assert tokens["access_token"] not in journal
    assert tokens["refresh_token"] not in journal
    assert "sandbox-client-secret" not in journal
    assert "brightsmile-owner" not in journal


def test_the_documented_tenant_ids_are_the_seeded_ones() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "sandbox.md").read_text()
    for tenant in (BSD, HCC, NWJ):
        assert f"`{tenant}`" in doc
