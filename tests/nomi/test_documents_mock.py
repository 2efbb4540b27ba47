"""The December additions over httpx.MockTransport: problem codes, void, newest-first lookups."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest

from nomi.errors import ProblemCode, RejectedError, TransientError, classify
from nomi.models import (
    Expense,
    ExpenseCreate,
    ExpenseLine,
    OrganisationSettings,
    SupplierCreditNote,
)
from tests.nomi.test_client_mock import make_client


def problem(status: int, *codes: str) -> httpx.Response:
    errors = [{"field": None, "code": c, "message": c} for c in codes]
    body = {"type": "x", "title": "T", "status": status, "detail": "no", "errors": errors}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "currency_unknown"),
        (400, "currency_mismatch"),
        (409, "has_payments"),
        (409, "already_voided"),
        (400, "period_locked"),
        (400, "contact_mismatch"),
    ],
)
def test_the_new_problem_codes_are_rejections_not_retries(status: int, code: str) -> None:
    error = classify(problem(status, code))
    assert isinstance(error, RejectedError)
    assert not isinstance(error, TransientError)
    assert error.codes == [code]
    assert error.has(ProblemCode(code))
    assert code in str(error)


def test_an_in_flight_409_stays_transient() -> None:
    assert isinstance(classify(problem(409, "idempotency_in_flight")), TransientError)


def expense_row(i: int, created: str, status: str = "ACTIVE") -> dict:
    return {
        "id": f"e{i}",
        "kind": "company",
        "date": "2026-01-15",
        "currency": "EUR",
        "exchange_rate": "0.855000",
        "base_total": "10.26",
        "total": "12.00",
        "status": status,
        "source_id": "item-1",
        "created_at": created,
        "updated_at": created,
    }


def test_lookups_are_newest_first_whatever_the_server_order() -> None:
    rows = [
        expense_row(1, "2026-01-01T00:00:00Z", "VOIDED"),
        expense_row(2, "2026-01-03T00:00:00Z"),
        {**expense_row(3, "2026-01-02T00:00:00Z"), "source_id": "someone-else"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["source_id"] == "item-1"
        return httpx.Response(200, json={"items": rows})

    with make_client(handler) as nomi:
        found = nomi.find_expenses_by_source_id("item-1")
        newest = nomi.find_expense_by_source_id("item-1")
    assert [(e.id, e.voided) for e in found] == [("e2", False), ("e1", True)]
    assert isinstance(newest, Expense)
    assert newest.id == "e2"
    assert (newest.exchange_rate, newest.base_total) == (Decimal("0.855"), Decimal("10.26"))


def test_void_of_an_already_voided_record_returns_it() -> None:
    seen: list[tuple[str, str, str | None]] = []
    voided = {
        "id": "cn1",
        "supplier_id": "s1",
        "date": "2026-01-20",
        "currency": "GBP",
        "total": "60.00",
        "status": "VOIDED",
        "voided_at": "2026-01-21T10:00:00Z",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("Idempotency-Key")))
        if request.method == "POST":
            return problem(409, "already_voided")
        return httpx.Response(200, json=voided)

    with make_client(handler) as nomi:
        record = nomi.void_supplier_credit_note("cn1", "key-2")
    assert isinstance(record, SupplierCreditNote)
    assert record.voided
    assert seen == [
        ("POST", "/api/v1/supplier-credit-notes/cn1/void", "key-2"),
        ("GET", "/api/v1/supplier-credit-notes/cn1", None),
    ]


def test_void_passes_other_refusals_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return problem(409, "has_payments")

    with make_client(handler) as nomi, pytest.raises(RejectedError) as caught:
        nomi.void_sales_invoice("i1", "k")
    assert caught.value.codes == ["has_payments"]


def test_the_organisation_and_a_lines_expense_are_sent_and_read_typed() -> None:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/organisation"):
            return httpx.Response(
                200,
                json={
                    "id": "t1",
                    "name": "Org",
                    "base_currency": "EUR",
                    "lock_date": "2025-12-31",
                    "vat_registered": False,
                    "updated_at": "2026-01-01T00:00:00Z",
                },
            )
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={**expense_row(9, "2026-01-05T00:00:00Z"), **sent[-1]})

    body = ExpenseCreate(
        kind="company",
        date=date(2026, 1, 15),
        currency="EUR",
        exchange_rate=Decimal("0.855"),
        total=Decimal("12.00"),
        source_id="item-1",
        lines=[ExpenseLine(category_id="c1", net_amount=Decimal("10.00"), tax_amount=Decimal("2"))],
    )
    with make_client(handler) as nomi:
        organisation = nomi.get_organisation()
        created = nomi.create_expense(body, "key-1")
    assert isinstance(organisation, OrganisationSettings)
    assert (organisation.lock_date, organisation.vat_registered) == (date(2025, 12, 31), False)
    assert sent == [
        {
            "kind": "company",
            "date": "2026-01-15",
            "currency": "EUR",
            "exchange_rate": "0.855",
            "total": "12.00",
            "source_id": "item-1",
            "lines": [
                {"description": "", "category_id": "c1", "net_amount": "10.00", "tax_amount": "2"}
            ],
        }
    ]
    assert created.lines[0].net_amount == Decimal("10.00")
