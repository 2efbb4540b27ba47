"""The December 2026 additions: organisation, lines, foreign currency, credit notes, void."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.api.test_writes import codes, expense, invoice
from tests.sandbox.conftest import ACCOUNTANT, BSD, OSY, PPL, ids

Refs = dict[str, dict[str, str]]


def refs_of(client: httpx.Client) -> Refs:
    """Ids of an organisation's seeded lists."""
    return {
        "cat": ids(client, "/categories"),
        "tax": ids(client, "/tax-rates"),
        "sup": ids(client, "/suppliers"),
        "cus": ids(client, "/customers"),
        "bank": ids(client, "/bank-accounts"),
        "user": ids(client, "/users"),
    }


@pytest.fixture
def refs(api: httpx.Client) -> Refs:
    """Ids of the seeded lists of Bright Smile Dental."""
    return refs_of(api)


@pytest.fixture
def euro(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> httpx.Client:
    """The accountant's client for Ostsee Yachting (base currency EUR)."""
    return api_for(connect(login=ACCOUNTANT, tenant=OSY)["access_token"], OSY)


def refs_of_bsd_like(refs: Refs) -> Refs:
    """Refs with Bright Smile's contact names mapped onto another organisation's first ones."""
    return {
        **refs,
        "cus": {"Denplan Ltd": next(iter(refs["cus"].values())), **refs["cus"]},
        "sup": {"BT Business": next(iter(refs["sup"].values())), **refs["sup"]},
        "bank": {"Business Current Account": next(iter(refs["bank"].values())), **refs["bank"]},
    }


def lines_expense(refs: Refs, **changes: Any) -> dict[str, Any]:
    """A three-line expense: 100 + 20 VAT, 50 + 2.50 VAT, 10 exempt = 182.50."""
    body = expense(refs, total="182.50")
    for name in ("category_id", "tax_rate_id", "tax_amount"):
        body.pop(name)
    body["lines"] = [
        {
            "description": "Router",
            "category_id": refs["cat"]["489"],
            "tax_rate_id": refs["tax"]["STD20"],
            "net_amount": "100.00",
            "tax_amount": "20.00",
        },
        {
            "description": "Heating",
            "category_id": refs["cat"]["445"],
            "tax_rate_id": refs["tax"]["RED5"],
            "net_amount": "50.00",
            "tax_amount": "2.50",
        },
        {
            "description": "Postage",
            "category_id": refs["cat"]["453"],
            "tax_rate_id": refs["tax"]["EXEMPT"],
            "net_amount": "10.00",
            "tax_amount": "0.00",
        },
    ]
    return {**body, **changes}


def supplier_credit(refs: Refs, **changes: Any) -> dict[str, Any]:
    """A supplier credit note of 60.00 (50 + 10 VAT) from BT Business."""
    body = {
        "supplier_id": refs["sup"]["BT Business"],
        "date": "2025-03-10",
        "currency": "GBP",
        "reference": "CN-1",
        "total": "60.00",
        "source_id": "credit-1",
        "lines": [
            {
                "description": "Refund",
                "category_id": refs["cat"]["489"],
                "tax_rate_id": refs["tax"]["STD20"],
                "net_amount": "50.00",
                "tax_amount": "10.00",
            }
        ],
    }
    return {**body, **changes}


def customer_credit(refs: Refs, **changes: Any) -> dict[str, Any]:
    """A customer credit note of 120.00 (incl. 20 VAT) to Denplan."""
    body = {
        "customer_id": refs["cus"]["Denplan Ltd"],
        "number": "CCN-001",
        "date": "2025-03-10",
        "currency": "GBP",
        "total": "120.00",
        "source_id": "ccredit-1",
        "lines": [
            {
                "description": "Kit returned",
                "amount": "120.00",
                "category_id": refs["cat"]["200"],
                "tax_rate_id": refs["tax"]["STD20S"],
                "tax_amount": "20.00",
            }
        ],
    }
    return {**body, **changes}


def created(response: httpx.Response) -> dict[str, Any]:
    """The body of a 201."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# the organisation ------------------------------------------------------------------------------
def test_the_organisation_shows_base_currency_lock_date_and_follows_admin_changes(
    sandbox: SandboxHandle, api: httpx.Client, euro: httpx.Client
) -> None:
    mine = api.get("/organisation").json()
    assert mine == {
        "id": BSD,
        "name": "Bright Smile Dental Ltd",
        "base_currency": "GBP",
        "lock_date": None,
        "vat_registered": True,
        "updated_at": mine["updated_at"],
    }
    assert euro.get("/organisation").json()["base_currency"] == "EUR"
    changed = sandbox.admin.patch(
        f"/tenants/{BSD}", json={"lock_date": "2025-06-30", "base_currency": "EUR"}
    )
    assert changed.status_code == 200, changed.text
    after = api.get("/organisation").json()
    assert (after["lock_date"], after["base_currency"]) == ("2025-06-30", "EUR")
    assert after["updated_at"] > mine["updated_at"]
    sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": None}).raise_for_status()
    cleared = api.get("/organisation").json()
    assert (cleared["lock_date"], cleared["base_currency"]) == (None, "EUR")
    bad = sandbox.admin.patch(f"/tenants/{BSD}", json={"base_currency": "XYZ"})
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (400, "currency_unknown")
    assert sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": "soon"}).status_code == 400


def test_the_organisation_needs_settings_read(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> None:
    client = api_for(connect(scopes=("contacts.read",))["access_token"])
    refused = client.get("/organisation")
    assert (refused.status_code, codes(refused)) == (403, ["insufficient_scope"])


def test_pennine_print_is_seeded_with_a_lock_date(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> None:
    client = api_for(connect(login=ACCOUNTANT, tenant=PPL)["access_token"], PPL)
    assert client.get("/organisation").json()["lock_date"] == "2025-12-31"


# expense lines --------------------------------------------------------------------------------
def test_an_expense_with_lines_keeps_them_and_sums_the_tax(api: httpx.Client, refs: Refs) -> None:
    doc = created(api.post("/expenses", json=lines_expense(refs)))
    assert [line["net_amount"] for line in doc["lines"]] == ["100.00", "50.00", "10.00"]
    assert (doc["tax_amount"], doc["category_id"], doc["status"]) == ("22.50", None, "ACTIVE")
    assert (doc["currency"], doc["exchange_rate"], doc["base_total"]) == (
        "GBP",
        "1.000000",
        "182.50",
    )
    single = created(api.post("/expenses", json=expense(refs, source_id="item-2")))
    assert single["lines"] == []


def test_lines_must_add_up_to_the_total_to_the_penny(api: httpx.Client, refs: Refs) -> None:
    response = api.post("/expenses", json=lines_expense(refs, total="182.51"))
    assert response.status_code == 400
    assert codes(response) == ["totals_mismatch"]
    assert "182.50" in response.json()["detail"]


def test_a_line_error_names_the_line_and_field(api: httpx.Client, refs: Refs) -> None:
    body = lines_expense(refs)
    body["lines"][1]["tax_amount"] = "9.00"
    body["lines"][2]["category_id"] = refs["cat"]["200"]
    body["total"] = "189.00"
    errors = api.post("/expenses", json=body).json()["errors"]
    assert {(e["field"], e["code"]) for e in errors} == {
        ("lines[1].tax_amount", "totals_mismatch"),
        ("lines[2].category_id", "category_wrong_type"),
    }


@pytest.mark.parametrize("extra", ["category_id", "tax_rate_id", "tax_amount"])
def test_both_forms_at_once_is_a_400(api: httpx.Client, refs: Refs, extra: str) -> None:
    value = {"category_id": refs["cat"]["489"], "tax_rate_id": refs["tax"]["STD20"]}.get(
        extra, "22.50"
    )
    response = api.post("/expenses", json=lines_expense(refs, **{extra: value}))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "lines", "code": "invalid", "message": response.json()["detail"]}
    ]


def test_neither_form_is_a_400(api: httpx.Client, refs: Refs) -> None:
    body = expense(refs)
    body.pop("category_id")
    response = api.post("/expenses", json=body)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "category_id")


def test_invoice_lines_each_carry_their_own_category_and_tax(api: httpx.Client, refs: Refs) -> None:
    body = invoice(refs)
    body["lines"][1]["category_id"] = refs["cat"]["260"]
    doc = created(api.post("/sales-invoices", json=body))
    assert [(line["category_id"], line["tax_rate_id"]) for line in doc["lines"]] == [
        (refs["cat"]["200"], refs["tax"]["EXEMPT"]),
        (refs["cat"]["260"], refs["tax"]["STD20S"]),
    ]


# foreign currency -----------------------------------------------------------------------------
def test_a_foreign_expense_gets_the_daily_rate_and_a_base_total(
    api: httpx.Client, refs: Refs
) -> None:
    doc = created(api.post("/expenses", json=expense(refs, currency="EUR")))
    rate = Decimal(doc["exchange_rate"])
    assert Decimal("0.84") < rate < Decimal("0.87")
    assert len(doc["exchange_rate"].split(".")[1]) == 6
    base = (Decimal("120.00") * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert (doc["currency"], doc["base_total"]) == ("EUR", str(base))
    again = created(api.post("/expenses", json=expense(refs, currency="EUR", source_id="x-2")))
    assert again["exchange_rate"] == doc["exchange_rate"], "one date, one daily rate"
    other_day = created(
        api.post("/expenses", json=expense(refs, currency="EUR", date="2025-03-02", source_id="x3"))
    )
    assert other_day["exchange_rate"] != doc["exchange_rate"], "the rate moves day to day"


def test_a_given_exchange_rate_is_used(api: httpx.Client, refs: Refs) -> None:
    body = expense(refs, currency="USD", exchange_rate="0.791234")
    doc = created(api.post("/expenses", json=body))
    assert (doc["exchange_rate"], doc["base_total"]) == ("0.791234", "94.95")
    jpy = created(
        api.post(
            "/expenses", json=expense(refs, currency="JPY", exchange_rate="0.0052", source_id="j")
        )
    )
    assert (jpy["exchange_rate"], jpy["base_total"]) == ("0.005200", "0.62")


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"currency": "XYZ"}, "currency", "currency_unknown"),
        ({"currency": "JPY"}, "exchange_rate", "currency_unknown"),
        ({"currency": "EUR", "exchange_rate": "0"}, "exchange_rate", "invalid"),
        ({"currency": "GBP", "exchange_rate": "1.2"}, "exchange_rate", "invalid"),
    ],
)
def test_currency_problems(
    api: httpx.Client, refs: Refs, changes: dict[str, str], field: str, code: str
) -> None:
    response = api.post("/expenses", json=expense(refs, **changes))
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]


@pytest.mark.parametrize("rate", ["1.1234567", "-1", "abc"])
def test_a_malformed_exchange_rate_is_a_400(api: httpx.Client, refs: Refs, rate: str) -> None:
    response = api.post("/expenses", json=expense(refs, currency="EUR", exchange_rate=rate))
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "exchange_rate")


def test_a_bank_account_must_be_in_the_document_or_base_currency(euro: httpx.Client) -> None:
    refs = refs_of(euro)
    body = {
        "supplier_id": refs["sup"]["Travis Perkins"],
        "date": "2025-03-01",
        "total": "120.00",
        "tax_rate_id": refs["tax"]["STD20"],
        "tax_amount": "20.00",
        "category_id": refs["cat"]["310"],
        "source_id": "eur-1",
    }
    dollars = refs["bank"]["Dollar Account"]
    refused = euro.post(
        "/expenses", json={**body, "currency": "GBP", "paid_from_bank_account_id": dollars}
    )
    assert codes(refused) == ["currency_mismatch"]
    in_dollars = {**body, "currency": "USD", "paid_from_bank_account_id": dollars}
    assert (
        created(euro.post("/expenses", json={**in_dollars, "source_id": "usd"}))["currency"]
        == "USD"
    )
    from_euros = {
        **body,
        "currency": "GBP",
        "paid_from_bank_account_id": refs["bank"]["Euro Current Account"],
    }
    doc = created(euro.post("/expenses", json={**from_euros, "source_id": "gbp"}))
    assert Decimal("1.14") < Decimal(doc["exchange_rate"]) < Decimal("1.19"), "EUR per GBP"
    sale = {
        **invoice(refs_of_bsd_like(refs)),
        "customer_id": refs["cus"]["Bramble Homes Ltd"],
        "currency": "GBP",
    }
    invoice_id = created(euro.post("/sales-invoices", json=sale))["id"]
    payment = {"bank_account_id": dollars, "date": "2025-03-05", "amount": "180.00"}
    paid = euro.post(f"/sales-invoices/{invoice_id}/payments", json=payment)
    assert codes(paid) == ["currency_mismatch"]
    sterling = {**payment, "bank_account_id": refs["bank"]["Sterling Account"]}
    assert euro.post(f"/sales-invoices/{invoice_id}/payments", json=sterling).status_code == 201


def test_a_new_supplier_in_an_unknown_currency_is_refused(api: httpx.Client) -> None:
    response = api.post("/suppliers", json={"name": "Zork", "currency": "ZZZ"})
    assert codes(response) == ["currency_unknown"]


# credit notes ---------------------------------------------------------------------------------
def test_a_supplier_credit_note_is_created_found_fetched_and_attached(
    api: httpx.Client, refs: Refs
) -> None:
    expense_id = created(api.post("/expenses", json=expense(refs)))["id"]
    body = supplier_credit(refs, applies_to_id=expense_id, currency="GBP")
    first = api.post("/supplier-credit-notes", json=body, headers={"Idempotency-Key": "cn-1"})
    doc = created(first)
    assert (doc["status"], doc["tax_amount"], doc["applies_to_id"]) == (
        "ACTIVE",
        "10.00",
        expense_id,
    )
    replay = api.post("/supplier-credit-notes", json=body, headers={"Idempotency-Key": "cn-1"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == doc
    found = api.get("/supplier-credit-notes", params={"source_id": "credit-1"}).json()["items"]
    assert [f["id"] for f in found] == [doc["id"]]
    assert api.get(f"/supplier-credit-notes/{doc['id']}").json()["reference"] == "CN-1"
    put = api.put(
        f"/supplier-credit-notes/{doc['id']}/attachments/cn.pdf",
        content=b"%PDF-1.4",
        headers={"Content-Type": "application/pdf"},
    )
    assert put.status_code == 201, put.text
    assert api.get(f"/supplier-credit-notes/{doc['id']}").json()["attachments"][0]["size"] == 8
    assert api.get("/supplier-credit-notes/nope").status_code == 404


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"applies_to_id": "nope"}, "reference_unknown"),
        ({"applies_to_id": "EXPENSE", "supplier": "Royal Mail"}, "contact_mismatch"),
        (
            {"applies_to_id": "EXPENSE", "total": "130.00", "net": "108.33", "tax": "21.67"},
            "totals_mismatch",
        ),
        ({"applies_to_id": "EXPENSE", "currency": "EUR"}, "currency_mismatch"),
        ({"total": "61.00"}, "totals_mismatch"),
        ({"total": "0.00", "net": "0.00", "tax": "0.00"}, "totals_mismatch"),
        ({"tax_rate": "STD20S"}, "tax_rate_wrong_kind"),
        ({"date": "2020-01-01", "supplier": "BT Business"}, "period_locked"),
    ],
)
def test_supplier_credit_note_validation(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs, changes: dict[str, str], code: str
) -> None:
    sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": "2024-12-31"}).raise_for_status()
    body = supplier_credit(refs)
    if changes.get("applies_to_id") == "EXPENSE":
        changes["applies_to_id"] = created(api.post("/expenses", json=expense(refs)))["id"]
    line = body["lines"][0]
    for key, field in (("net", "net_amount"), ("tax", "tax_amount")):
        if key in changes:
            line[field] = changes.pop(key)
    if "tax_rate" in changes:
        line["tax_rate_id"] = refs["tax"][changes.pop("tax_rate")]
    if "supplier" in changes:
        body["supplier_id"] = refs["sup"][changes.pop("supplier")]
    response = api.post("/supplier-credit-notes", json={**body, **changes})
    assert response.status_code == 400, response.text
    assert code in codes(response)


def test_credits_of_one_expense_may_not_exceed_it(api: httpx.Client, refs: Refs) -> None:
    expense_id = created(api.post("/expenses", json=expense(refs)))["id"]
    created(
        api.post("/supplier-credit-notes", json=supplier_credit(refs, applies_to_id=expense_id))
    )
    created(
        api.post(
            "/supplier-credit-notes",
            json=supplier_credit(refs, applies_to_id=expense_id, source_id="credit-2"),
        )
    )
    third = api.post(
        "/supplier-credit-notes",
        json=supplier_credit(refs, applies_to_id=expense_id, source_id="credit-3"),
    )
    assert codes(third) == ["totals_mismatch"]


def test_a_customer_credit_note_number_is_unique_and_applies_to_an_invoice(
    api: httpx.Client, refs: Refs
) -> None:
    invoice_id = created(api.post("/sales-invoices", json=invoice(refs)))["id"]
    doc = created(
        api.post("/customer-credit-notes", json=customer_credit(refs, applies_to_id=invoice_id))
    )
    assert (doc["number"], doc["tax_amount"], doc["base_total"]) == ("CCN-001", "20.00", "120.00")
    again = api.post("/customer-credit-notes", json=customer_credit(refs, source_id="ccredit-2"))
    assert codes(again) == ["duplicate_number"]
    same_as_invoice = customer_credit(refs, number="SI-001", source_id="ccredit-3")
    assert created(api.post("/customer-credit-notes", json=same_as_invoice))["number"] == "SI-001"
    other = api.post(
        "/customer-credit-notes",
        json=customer_credit(
            refs,
            number="CCN-9",
            source_id="ccredit-4",
            applies_to_id=invoice_id,
            customer_id=refs["cus"]["NHS England"],
        ),
    )
    assert codes(other) == ["contact_mismatch"]


def test_credit_notes_need_the_write_scope_of_their_side(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client], refs: Refs
) -> None:
    sales_only = api_for(connect(scopes=("sales.write", "settings.read"))["access_token"])
    refused = sales_only.post("/supplier-credit-notes", json=supplier_credit(refs))
    assert (refused.status_code, codes(refused)) == (403, ["insufficient_scope"])
    assert sales_only.post("/customer-credit-notes", json=customer_credit(refs)).status_code == 201


# void -----------------------------------------------------------------------------------------
def _make(api: httpx.Client, refs: Refs, path: str) -> dict[str, Any]:
    bodies = {
        "expenses": expense(refs),
        "sales-invoices": invoice(refs),
        "supplier-credit-notes": supplier_credit(refs),
        "customer-credit-notes": customer_credit(refs),
    }
    return created(api.post(f"/{path}", json=bodies[path]))


@pytest.mark.parametrize(
    "path", ["expenses", "sales-invoices", "supplier-credit-notes", "customer-credit-notes"]
)
def test_void_replays_with_its_key_and_refuses_a_second_void(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs, path: str
) -> None:
    doc = _make(api, refs, path)
    url = f"/{path}/{doc['id']}/void"
    voided = api.post(url, headers={"Idempotency-Key": "void-1"})
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert (body["status"], body["version"], body["source_id"]) == ("VOIDED", 2, doc["source_id"])
    assert body["voided_at"] == body["updated_at"]
    replay = api.post(url, headers={"Idempotency-Key": "void-1"})
    assert (replay.headers["idempotent-replayed"], replay.json()) == ("true", body)
    second = api.post(url, headers={"Idempotency-Key": "void-2"})
    assert (second.status_code, codes(second)) == (409, ["already_voided"])
    assert api.get(f"/{path}/{doc['id']}").json()["status"] == "VOIDED"
    assert api.post(f"/{path}/nope/void").status_code == 404


def test_void_inside_a_locked_period_is_period_locked(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs
) -> None:
    doc = _make(api, refs, "expenses")
    sandbox.admin.patch(f"/tenants/{BSD}", json={"lock_date": "2025-03-01"}).raise_for_status()
    refused = api.post(f"/expenses/{doc['id']}/void", headers={"Idempotency-Key": "v"})
    assert (refused.status_code, codes(refused)) == (400, ["period_locked"])
    assert api.get(f"/expenses/{doc['id']}").json()["status"] == "ACTIVE"


def test_an_invoice_with_payments_is_not_voided(api: httpx.Client, refs: Refs) -> None:
    doc = _make(api, refs, "sales-invoices")
    payment = {
        "bank_account_id": refs["bank"]["Business Current Account"],
        "date": "2025-03-05",
        "amount": "10.00",
    }
    assert api.post(f"/sales-invoices/{doc['id']}/payments", json=payment).status_code == 201
    refused = api.post(f"/sales-invoices/{doc['id']}/void")
    assert (refused.status_code, codes(refused)) == (409, ["has_payments"])


def test_a_voided_invoice_takes_no_payment_and_cannot_be_credited(
    api: httpx.Client, refs: Refs
) -> None:
    doc = _make(api, refs, "sales-invoices")
    assert api.post(f"/sales-invoices/{doc['id']}/void").json()["amount_due"] == "0.00"
    payment = {
        "bank_account_id": refs["bank"]["Business Current Account"],
        "date": "2025-03-05",
        "amount": "10.00",
    }
    paid = api.post(f"/sales-invoices/{doc['id']}/payments", json=payment)
    assert (paid.status_code, codes(paid)) == (409, ["already_voided"])
    credit = api.post("/customer-credit-notes", json=customer_credit(refs, applies_to_id=doc["id"]))
    assert codes(credit) == ["already_voided"]


def test_lookup_by_source_id_returns_every_record_newest_first(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs
) -> None:
    first = created(api.post("/expenses", json=expense(refs)))
    api.post(f"/expenses/{first['id']}/void").raise_for_status()
    second = created(api.post("/expenses", json=expense(refs, reference="INV-1b")))
    found = api.get("/expenses", params={"source_id": "item-1"}).json()["items"]
    assert [(f["id"], f["status"]) for f in found] == [
        (second["id"], "ACTIVE"),
        (first["id"], "VOIDED"),
    ]
    assert sandbox.admin.get("/duplicates").json() == {"expenses": {}, "sales_invoices": {}}
    created(api.post("/expenses", json=expense(refs, reference="INV-1c")))
    assert sandbox.admin.get("/duplicates").json()["expenses"] == {"item-1": 2}


# the gateway applies to the new endpoints -----------------------------------------------------
def test_a_dropped_credit_note_response_replays_with_its_key(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs
) -> None:
    sandbox.fault("commit_then_drop", tenant_id=BSD, path="/api/v1/supplier-credit-notes", count=1)
    key = {"Idempotency-Key": "cn-drop"}
    with pytest.raises(httpx.TransportError):
        api.post("/supplier-credit-notes", json=supplier_credit(refs), headers=key)
    replay = api.post("/supplier-credit-notes", json=supplier_credit(refs), headers=key)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    records = sandbox.admin.get("/records", params={"kind": "supplier_credit_note"}).json()
    assert [r["id"] for r in records] == [replay.json()["id"]]


def test_faults_and_in_flight_keys_apply_to_void(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs
) -> None:
    doc = _make(api, refs, "expenses")
    url = f"/expenses/{doc['id']}/void"
    sandbox.fault("server_error", tenant_id=BSD, path=url.replace("/", "/api/v1/", 1), count=1)
    failed = api.post(url, headers={"Idempotency-Key": "v-1"})
    assert (failed.status_code, failed.headers["content-type"]) == (500, "text/html; charset=utf-8")
    assert api.get(f"/expenses/{doc['id']}").json()["status"] == "ACTIVE"
    sandbox.fault(
        "validation",
        tenant_id=BSD,
        path="/api/v1/customer-credit-notes",
        params={"code": "currency_mismatch"},
    )
    refused = api.post("/customer-credit-notes", json=customer_credit(refs))
    assert codes(refused) == ["currency_mismatch"]
    assert api.post(url, headers={"Idempotency-Key": "v-1"}).json()["status"] == "VOIDED"


def test_attachment_and_rate_limit_faults_apply_to_the_new_routes(
    sandbox: SandboxHandle, api: httpx.Client, refs: Refs
) -> None:
    doc = _make(api, refs, "customer-credit-notes")
    sandbox.fault("attachment_fail_once", tenant_id=BSD, path="/api/v1/customer-credit-notes")
    url = f"/customer-credit-notes/{doc['id']}/attachments/cn.png"
    png = {"Content-Type": "image/png"}
    first = api.put(url, content=b"\x89PNG", headers=png)
    assert (first.status_code, codes(first), first.headers["retry-after"]) == (
        503,
        ["not_ready"],
        "1",
    )
    assert api.put(url, content=b"\x89PNG", headers=png).status_code == 201
    sandbox.fault("rate_limit_minute", tenant_id=BSD, path="/api/v1/organisation", count=1)
    limited = api.get("/organisation")
    assert (limited.status_code, limited.headers["x-rate-limit-problem"]) == (429, "minute")
    assert api.get("/organisation").status_code == 200
