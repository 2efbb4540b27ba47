"""Creating contacts, expenses, invoices, payments and attachments; every validation code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import BSD, NWJ, ids


@pytest.fixture
def refs(api: httpx.Client) -> dict[str, dict[str, str]]:
    """Ids of the seeded lists of Bright Smile Dental."""
    return {
        "cat": ids(api, "/categories"),
        "tax": ids(api, "/tax-rates"),
        "sup": ids(api, "/suppliers"),
        "cus": ids(api, "/customers"),
        "bank": ids(api, "/bank-accounts"),
        "user": ids(api, "/users"),
    }


def expense(refs: dict[str, dict[str, str]], **changes: Any) -> dict[str, Any]:
    """A valid company expense: 120.00 with 20.00 VAT."""
    body = {
        "kind": "company",
        "supplier_id": refs["sup"]["BT Business"],
        "date": "2025-03-01",
        "currency": "GBP",
        "reference": "INV-1",
        "total": "120.00",
        "tax_rate_id": refs["tax"]["STD20"],
        "tax_amount": "20.00",
        "category_id": refs["cat"]["489"],
        "description": "Broadband",
        "paid_from_bank_account_id": refs["bank"]["Business Current Account"],
        "source_id": "item-1",
    }
    return {**body, **changes}


def invoice(refs: dict[str, dict[str, str]], **changes: Any) -> dict[str, Any]:
    """A valid two-line sales invoice totalling 180.00."""
    body = {
        "customer_id": refs["cus"]["Denplan Ltd"],
        "number": "SI-001",
        "date": "2025-03-01",
        "due_date": "2025-03-31",
        "currency": "GBP",
        "total": "180.00",
        "source_id": "sale-1",
        "lines": [
            {
                "description": "Check-up",
                "amount": "60.00",
                "category_id": refs["cat"]["200"],
                "tax_rate_id": refs["tax"]["EXEMPT"],
                "tax_amount": "0.00",
            },
            {
                "description": "Whitening kit",
                "amount": "120.00",
                "category_id": refs["cat"]["200"],
                "tax_rate_id": refs["tax"]["STD20S"],
                "tax_amount": "20.00",
            },
        ],
    }
    return {**body, **changes}


def codes(response: httpx.Response) -> list[str]:
    """The problem codes of a response."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["code"] for e in response.json()["errors"]]


def test_an_expense_is_created_and_found_by_source_id(api: httpx.Client, refs: Any) -> None:
    created = api.post("/expenses", json=expense(refs))
    assert created.status_code == 201, created.text
    doc = created.json()
    assert (doc["total"], doc["tax_amount"], doc["version"]) == ("120.00", "20.00", 1)
    assert doc["updated_at"].endswith("Z")
    found = api.get("/expenses", params={"source_id": "item-1"}).json()["items"]
    assert [e["id"] for e in found] == [doc["id"]]
    assert api.get(f"/expenses/{doc['id']}").json()["reference"] == "INV-1"
    assert api.get("/expenses", params={"source_id": "nothing"}).json()["items"] == []


def test_an_expense_claim_needs_a_known_claimant(api: httpx.Client, refs: Any) -> None:
    claim = expense(
        refs, kind="claim", paid_from_bank_account_id=None, user_id=refs["user"]["Dr Owen Hughes"]
    )
    assert api.post("/expenses", json=claim).status_code == 201
    assert codes(api.post("/expenses", json={**claim, "user_id": None})) == ["contact_unknown"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"category_id": "499"}, "account_archived"),
        ({"category_id": "200"}, "category_wrong_type"),
        ({"tax_rate_id": "STD175", "tax_amount": "17.87"}, "tax_rate_archived"),
        ({"tax_rate_id": "STD20S"}, "tax_rate_wrong_kind"),
        ({"supplier_id": "00000000-0000-0000-0000-000000000000"}, "contact_unknown"),
        ({"tax_amount": "-1.00"}, "totals_mismatch"),
        ({"tax_amount": "130.00"}, "totals_mismatch"),
        ({"tax_amount": "19.00"}, "totals_mismatch"),
        ({"tax_rate_id": "ZERO"}, "totals_mismatch"),
        ({"paid_from_bank_account_id": "Old Euro Account"}, "account_archived"),
    ],
)
def test_expense_validation_codes(
    api: httpx.Client, refs: Any, changes: dict[str, str], code: str
) -> None:
    lookup = {"category_id": "cat", "tax_rate_id": "tax", "paid_from_bank_account_id": "bank"}
    resolved = {k: refs[lookup[k]].get(v, v) if k in lookup else v for k, v in changes.items()}
    response = api.post("/expenses", json=expense(refs, **resolved))
    assert response.status_code == 400
    assert code in codes(response)


@pytest.mark.parametrize("code", ["ZERO", "EXEMPT", "NOVAT"])
def test_a_zero_rate_refuses_even_a_penny_of_tax(api: httpx.Client, refs: Any, code: str) -> None:
    # issue 15: the few-pence tolerance must not apply at 0%; a real ledger refuses any tax
    small = expense(refs, total="0.11", tax_rate_id=refs["tax"][code], tax_amount="0.01")
    response = api.post("/expenses", json=small)
    assert response.status_code == 400
    assert codes(response) == ["totals_mismatch"]
    assert "0%" in response.json()["detail"]
    zero = api.post("/expenses", json={**small, "tax_amount": "0.00", "source_id": "item-z"})
    assert zero.status_code == 201, zero.text
    lines = invoice(refs)["lines"]
    lines[0] = {**lines[0], "tax_rate_id": refs["tax"][code], "tax_amount": "0.01"}
    bad_invoice = api.post("/sales-invoices", json=invoice(refs, lines=lines))
    assert codes(bad_invoice) == ["totals_mismatch"]


def test_tax_within_a_few_pence_is_accepted(api: httpx.Client, refs: Any) -> None:
    assert api.post("/expenses", json=expense(refs, tax_amount="20.03")).status_code == 201


def test_a_locked_period_refuses_the_expense(
    sandbox: SandboxHandle, api: httpx.Client, refs: Any
) -> None:
    sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": "2025-03-31"})
    assert codes(api.post("/expenses", json=expense(refs))) == ["period_locked"]
    northwind = {t["id"]: t for t in sandbox.admin.get("/tenants").json()}[NWJ]
    assert northwind["lock_date"] == "2021-03-31"


def test_a_sales_invoice_with_a_payment_shows_the_bank_account(
    api: httpx.Client, refs: Any
) -> None:
    created = api.post("/sales-invoices", json=invoice(refs))
    assert created.status_code == 201, created.text
    invoice_id = created.json()["id"]
    payment = api.post(
        f"/sales-invoices/{invoice_id}/payments",
        json={
            "bank_account_id": refs["bank"]["Business Current Account"],
            "date": "2025-03-05",
            "amount": "180.00",
        },
    )
    assert payment.status_code == 201, payment.text
    after = api.get(f"/sales-invoices/{invoice_id}").json()
    assert (after["status"], after["amount_due"], after["amount_paid"]) == (
        "PAID",
        "0.00",
        "180.00",
    )
    assert after["payments"][0]["bank_account_id"] == refs["bank"]["Business Current Account"]
    over = api.post(
        f"/sales-invoices/{invoice_id}/payments",
        json={
            "bank_account_id": refs["bank"]["Business Current Account"],
            "date": "2025-03-05",
            "amount": "1.00",
        },
    )
    assert codes(over) == ["totals_mismatch"]
    found = api.get("/sales-invoices", params={"source_id": "sale-1"}).json()["items"]
    assert [i["id"] for i in found] == [invoice_id]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"total": "181.00"}, "totals_mismatch"),
        ({"customer_id": "00000000-0000-0000-0000-000000000000"}, "contact_unknown"),
        ({"line_tax": "STD20P"}, "tax_rate_wrong_kind"),
        ({"line_category": "310"}, "category_wrong_type"),
        ({"date": "2021-01-01", "due_date": "2021-01-31"}, "period_locked"),
    ],
)
def test_sales_invoice_validation_codes(
    sandbox: SandboxHandle, api: httpx.Client, refs: Any, changes: dict[str, str], code: str
) -> None:
    sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": "2024-12-31"})
    body = invoice(refs, **{k: v for k, v in changes.items() if not k.startswith("line_")})
    if "line_tax" in changes:
        body["lines"][1]["tax_rate_id"] = refs["tax"][changes["line_tax"]]
    if "line_category" in changes:
        body["lines"][0]["category_id"] = refs["cat"][changes["line_category"]]
    assert code in codes(api.post("/sales-invoices", json=body))


def test_an_invoice_number_is_unique_per_organisation(api: httpx.Client, refs: Any) -> None:
    assert api.post("/sales-invoices", json=invoice(refs)).status_code == 201
    again = api.post("/sales-invoices", json=invoice(refs, source_id="sale-2"))
    assert codes(again) == ["duplicate_number"]


def test_a_supplier_update_with_a_stale_version_is_409(api: httpx.Client) -> None:
    created = api.post("/suppliers", json={"name": "New Dental Lab", "source_id": "sup-1"})
    assert created.status_code == 201
    doc = created.json()
    updated = api.put(f"/suppliers/{doc['id']}", json={"name": "New Dental Lab Ltd", "version": 1})
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    stale = api.put(f"/suppliers/{doc['id']}", json={"name": "Other", "version": 1})
    assert stale.status_code == 409
    assert codes(stale) == ["stale_version"]
    assert api.put("/suppliers/unknown", json={"name": "x", "version": 1}).status_code == 404


def test_customers_are_created_with_the_sales_scope(api: httpx.Client, refs: Any) -> None:
    created = api.post(
        "/customers",
        json={"name": "Smile Clinic Group", "default_tax_rate_id": refs["tax"]["STD20S"]},
    )
    assert created.status_code == 201
    names = {c["name"] for c in api.get("/customers").json()["items"]}
    assert "Smile Clinic Group" in names


def test_attachments_replace_by_name_and_refuse_size_and_type(
    sandbox: SandboxHandle,
    api: httpx.Client,
    refs: Any,
) -> None:
    expense_id = api.post("/expenses", json=expense(refs)).json()["id"]
    url = f"/expenses/{expense_id}/attachments/receipt (1).pdf"
    first = api.put(url, content=b"%PDF-1.4 one", headers={"Content-Type": "application/pdf"})
    assert first.status_code == 201, first.text
    second = api.put(url, content=b"%PDF-1.4 two!", headers={"Content-Type": "application/pdf"})
    assert second.status_code == 200
    doc = api.get(f"/expenses/{expense_id}").json()
    assert [(a["filename"], a["size"]) for a in doc["attachments"]] == [("receipt (1).pdf", 13)]
    gif = api.put(
        f"/expenses/{expense_id}/attachments/a.gif",
        content=b"GIF89a",
        headers={"Content-Type": "image/gif"},
    )
    assert (gif.status_code, codes(gif)) == (415, ["attachment_type"])
    big = api.put(
        f"/expenses/{expense_id}/attachments/big.png",
        content=b"\0" * (10 * 1024 * 1024 + 1),
        headers={"Content-Type": "image/png"},
    )
    assert (big.status_code, codes(big)) == (413, ["attachment_too_large"])
    heic = api.put(
        f"/expenses/{expense_id}/attachments/photo.heic",
        content=b"heic",
        headers={"Content-Type": "image/heic"},
    )
    assert heic.status_code == 201
    kinds = [
        r["filename"] for r in sandbox.admin.get("/records", params={"kind": "attachment"}).json()
    ]
    assert sorted(kinds) == ["photo.heic", "receipt (1).pdf"]


def test_sales_invoice_attachments_work_too(api: httpx.Client, refs: Any) -> None:
    invoice_id = api.post("/sales-invoices", json=invoice(refs)).json()["id"]
    response = api.put(
        f"/sales-invoices/{invoice_id}/attachments/inv.jpg",
        content=b"\xff\xd8",
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 201
    assert (
        api.get(f"/sales-invoices/{invoice_id}").json()["attachments"][0]["filename"] == "inv.jpg"
    )
