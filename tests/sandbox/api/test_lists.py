"""The five lists and users: paging, order, incremental reads, archived records, scopes, tenancy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import ACCOUNTANT, BSD, HCC

LISTS = ["suppliers", "customers", "categories", "tax-rates", "bank-accounts", "users"]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_has_the_envelope_and_hides_archived_by_default(
    api: httpx.Client, path: str
) -> None:
    body = api.get(f"/{path}").json()
    assert set(body) == {"items", "pagination", "server_time"}
    assert body["server_time"].endswith("Z")
    assert body["pagination"]["item_count"] == len(body["items"]) > 0
    assert all(item["status"] == "ACTIVE" for item in body["items"])
    everything = api.get(f"/{path}", params={"include_archived": "true"}).json()
    assert everything["pagination"]["item_count"] >= body["pagination"]["item_count"]


def test_seeded_tax_rates_are_uk_vat_with_sales_and_purchase_only_rates(api: httpx.Client) -> None:
    rates = api.get("/tax-rates", params={"include_archived": "true"}).json()["items"]
    by_code = {r["code"]: r for r in rates}
    assert by_code["STD20"]["rate"] == "20.00"
    assert by_code["RED5"]["rate"] == "5.00"
    assert {by_code[c]["rate"] for c in ("ZERO", "EXEMPT", "NOVAT")} == {"0.00"}
    assert by_code["STD20S"]["applies_to"] == "SALES"
    assert by_code["STD20P"]["applies_to"] == "PURCHASES"
    assert by_code["STD175"]["status"] == "ARCHIVED"


def test_paging_walks_every_supplier_once_in_updated_at_id_order(
    sandbox: SandboxHandle,
    api: httpx.Client,
) -> None:
    sandbox.admin.post(f"/tenants/{BSD}/suppliers", json={"count": 2500})
    seen: list[tuple[str, str]] = []
    page = 1
    while True:
        body = api.get("/suppliers", params={"page": page, "page_size": 1000}).json()
        assert body["pagination"]["page_count"] == 3
        if not body["items"]:
            break
        seen += [(s["updated_at"], s["id"]) for s in body["items"]]
        page += 1
    assert page == 4
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen) == 2507


def test_page_size_above_1000_is_a_problem(api: httpx.Client) -> None:
    response = api.get("/suppliers", params={"page_size": 1001})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_updated_since_is_inclusive_and_sees_changes_and_archiving(
    sandbox: SandboxHandle,
    api: httpx.Client,
) -> None:
    first = api.get("/categories").json()
    bookmark = first["server_time"]
    assert api.get("/categories", params={"updated_since": bookmark}).json()["items"] == []
    category = first["items"][0]
    changed = sandbox.admin.patch(
        f"/tenants/{BSD}/categories/{category['id']}", json={"status": "ARCHIVED"}
    ).json()
    assert changed["version"] == category["version"] + 1
    delta = api.get(
        "/categories", params={"updated_since": bookmark, "include_archived": "true"}
    ).json()["items"]
    assert [(c["id"], c["status"]) for c in delta] == [(category["id"], "ARCHIVED")]
    exact = api.get(
        "/categories", params={"updated_since": changed["updated_at"], "include_archived": "true"}
    ).json()["items"]
    assert [c["id"] for c in exact] == [category["id"]]
    assert api.get("/categories", params={"updated_since": "yesterday"}).status_code == 400


def test_page_drift_moves_a_record_between_page_fetches(
    sandbox: SandboxHandle,
    api: httpx.Client,
) -> None:
    sandbox.admin.post(f"/tenants/{BSD}/suppliers", json={"count": 13})
    sandbox.fault("page_drift", tenant_id=BSD, path="/api/v1/suppliers", count=1)
    first = api.get("/suppliers", params={"page": 1, "page_size": 10}).json()
    second = api.get("/suppliers", params={"page": 2, "page_size": 10}).json()
    naive = {s["id"] for s in first["items"] + second["items"]}
    assert len(naive) == 19  # one record moved to the end and one slid back onto page 1: skipped
    delta = api.get("/suppliers", params={"updated_since": first["server_time"]}).json()["items"]
    assert [s["id"] for s in delta] == [first["items"][0]["id"]]
    assert delta[0]["version"] == first["items"][0]["version"] + 1


def test_lists_need_the_right_scope(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> None:
    client = api_for(connect(scopes=("contacts.read",))["access_token"])
    assert client.get("/suppliers").status_code == 200
    refused = client.get("/tax-rates")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "insufficient_scope"
    body = {"date": "2025-01-01", "total": "1.00", "category_id": "x"}
    assert client.post("/expenses", json=body).json()["errors"][0]["code"] == "insufficient_scope"


def test_a_tenant_not_granted_is_403(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> None:
    access = connect()["access_token"]
    assert api_for(access, HCC).get("/suppliers").status_code == 403
    missing = httpx.get(
        api_for(access).base_url.join("suppliers"), headers={"Authorization": f"Bearer {access}"}
    )
    assert missing.status_code == 403


def test_tenants_are_isolated(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> None:
    access = connect(login=ACCOUNTANT, tenant=HCC)["access_token"]
    names = {s["name"] for s in api_for(access, HCC).get("/suppliers").json()["items"]}
    assert "Bristol Coffee Roasters" in names
    assert "Henry Schein Minerva" not in names


def test_deleting_a_connection_removes_the_tenant(
    sandbox: SandboxHandle, connect: Callable[..., dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {connect()['access_token']}"}
    [connection] = httpx.get(f"{sandbox.base_url}/connections", headers=headers).json()
    deleted = httpx.delete(f"{sandbox.base_url}/connections/{connection['id']}", headers=headers)
    assert deleted.status_code == 204
    assert httpx.get(f"{sandbox.base_url}/connections", headers=headers).json() == []
    after = httpx.get(f"{sandbox.api_url}/suppliers", headers={**headers, "Nomi-Tenant-Id": BSD})
    assert after.status_code == 403
