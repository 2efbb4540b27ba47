"""NomiClient against the sandbox: organisation, lines, currency, credit notes and void."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from nomi.client import NomiClient
from nomi.errors import OutcomeUnknownError, ProblemCode, RejectedError
from nomi.models import (
    CustomerCreditNoteCreate,
    ExpenseCreate,
    ExpenseLine,
    InvoiceLine,
    PaymentCreate,
    SalesInvoiceCreate,
    SupplierCreditNoteCreate,
)
from tests.nomi.conftest import Connected

Refs = dict[str, Any]


def refs(nomi: NomiClient) -> Refs:
    """Ids by code or name of the organisation's lists."""
    return {
        "cat": {c.code: c.id for c in nomi.iter_categories()},
        "tax": {t.code: t.id for t in nomi.iter_tax_rates()},
        "sup": {s.name: s.id for s in nomi.iter_suppliers()},
        "cus": {c.name: c.id for c in nomi.iter_customers()},
        "bank": {b.name: b.id for b in nomi.iter_bank_accounts()},
    }


def three_lines(ref: Refs, **changes: Any) -> ExpenseCreate:
    """An expense of 182.50 in three lines."""
    fields: dict[str, Any] = {
        "kind": "company",
        "supplier_id": ref["sup"]["BT Business"],
        "date": date(2026, 1, 15),
        "currency": "GBP",
        "total": Decimal("182.50"),
        "source_id": "item-lines",
        "lines": [
            ExpenseLine(
                description="Router",
                category_id=ref["cat"]["489"],
                tax_rate_id=ref["tax"]["STD20"],
                net_amount=Decimal("100.00"),
                tax_amount=Decimal("20.00"),
            ),
            ExpenseLine(
                description="Heating",
                category_id=ref["cat"]["445"],
                tax_rate_id=ref["tax"]["RED5"],
                net_amount=Decimal("50.00"),
                tax_amount=Decimal("2.50"),
            ),
            ExpenseLine(
                description="Stamps",
                category_id=ref["cat"]["453"],
                tax_rate_id=None,
                net_amount=Decimal("10.00"),
            ),
        ],
    }
    return ExpenseCreate(**{**fields, **changes})


def supplier_credit(ref: Refs, **changes: Any) -> SupplierCreditNoteCreate:
    """A supplier credit note of 60.00 (50 + 10 VAT)."""
    fields: dict[str, Any] = {
        "supplier_id": ref["sup"]["BT Business"],
        "date": date(2026, 1, 20),
        "currency": "GBP",
        "reference": "CN-7",
        "total": Decimal("60.00"),
        "source_id": "credit-7",
        "lines": [
            ExpenseLine(
                description="Refund",
                category_id=ref["cat"]["489"],
                tax_rate_id=ref["tax"]["STD20"],
                net_amount=Decimal("50.00"),
                tax_amount=Decimal("10.00"),
            )
        ],
    }
    return SupplierCreditNoteCreate(**{**fields, **changes})


def an_invoice(ref: Refs, **changes: Any) -> SalesInvoiceCreate:
    """A two-line invoice of 180.00, each line with its own category and tax rate."""
    fields: dict[str, Any] = {
        "customer_id": ref["cus"]["Denplan Ltd"],
        "number": "SI-77",
        "date": date(2026, 1, 15),
        "currency": "GBP",
        "total": Decimal("180.00"),
        "source_id": "sale-77",
        "lines": [
            InvoiceLine(
                description="Check-up",
                amount=Decimal("60.00"),
                category_id=ref["cat"]["200"],
                tax_rate_id=ref["tax"]["EXEMPT"],
            ),
            InvoiceLine(
                description="Kit",
                amount=Decimal("120.00"),
                category_id=ref["cat"]["260"],
                tax_rate_id=ref["tax"]["STD20S"],
                tax_amount=Decimal("20.00"),
            ),
        ],
    }
    return SalesInvoiceCreate(**{**fields, **changes})


def test_the_organisation_is_typed_and_follows_admin_changes(connected: Connected) -> None:
    with connected.client() as nomi:
        before = nomi.get_organisation()
        assert (before.id, before.base_currency, before.lock_date) == (
            connected.tenant_id,
            "GBP",
            None,
        )
        assert before.vat_registered is True
        connected.sandbox.admin.patch(
            f"/tenants/{connected.tenant_id}", json={"lock_date": "2025-12-31"}
        ).raise_for_status()
        after = nomi.get_organisation()
    assert after.lock_date == date(2025, 12, 31)
    assert after.updated_at > before.updated_at


def test_an_expense_with_lines_round_trips(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        expense = nomi.create_expense(three_lines(ref), "key-lines")
    assert [line.net_amount for line in expense.lines] == [Decimal(100), Decimal(50), Decimal(10)]
    assert expense.lines[2].tax_rate_id is None
    assert (expense.tax_amount, expense.category_id) == (Decimal("22.50"), None)
    assert (expense.exchange_rate, expense.base_total) == (Decimal(1), Decimal("182.50"))
    assert not expense.voided


def test_lines_that_do_not_add_up_are_rejected_with_the_code(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        with pytest.raises(RejectedError) as caught:
            nomi.create_expense(three_lines(ref, total=Decimal("182.49")), "key-off")
    assert caught.value.has(ProblemCode.TOTALS_MISMATCH)
    assert caught.value.field_errors[0].field == "total"


def test_both_forms_or_neither_fail_before_sending() -> None:
    line = ExpenseLine(category_id="c", net_amount=Decimal(1))
    base: dict[str, Any] = {
        "kind": "company",
        "date": date(2026, 1, 1),
        "currency": "GBP",
        "total": Decimal(1),
        "source_id": "s",
    }
    with pytest.raises(ValidationError, match="not both"):
        ExpenseCreate(**base, lines=[line], category_id="c")
    with pytest.raises(ValidationError, match="category_id or lines"):
        ExpenseCreate(**base)
    with pytest.raises(ValidationError):
        ExpenseCreate(**base, category_id="c", exchange_rate=Decimal("1.1234567"))
    with pytest.raises(ValidationError):
        ExpenseCreate(**base, category_id="c", exchange_rate=Decimal(0))


def test_a_foreign_invoice_carries_the_daily_rate_or_ours(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        daily = nomi.create_sales_invoice(an_invoice(ref, currency="EUR"), "key-eur")
        ours = nomi.create_sales_invoice(
            an_invoice(
                ref,
                currency="USD",
                number="SI-78",
                source_id="sale-78",
                exchange_rate=Decimal("0.75"),
            ),
            "key-usd",
        )
        with pytest.raises(RejectedError) as unknown:
            nomi.create_sales_invoice(
                an_invoice(ref, currency="XYZ", number="SI-79", source_id="s79"), "key-x"
            )
    assert daily.exchange_rate is not None
    assert Decimal("0.8") < daily.exchange_rate < Decimal(1)
    assert daily.base_total == (Decimal("180.00") * daily.exchange_rate).quantize(Decimal("0.01"))
    assert (ours.exchange_rate, ours.base_total) == (Decimal("0.75"), Decimal("135.00"))
    assert [(line.category_id, line.tax_rate_id) for line in ours.lines] == [
        (ref["cat"]["200"], ref["tax"]["EXEMPT"]),
        (ref["cat"]["260"], ref["tax"]["STD20S"]),
    ]
    assert unknown.value.codes == [ProblemCode.CURRENCY_UNKNOWN]


def test_supplier_credit_notes_create_find_get_attach_and_void(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        expense = nomi.create_expense(three_lines(ref), "key-e")
        created = nomi.create_supplier_credit_note(
            supplier_credit(ref, applies_to_id=expense.id), "key-cn"
        )
        assert (created.status, created.applies_to_id, created.tax_amount) == (
            "ACTIVE",
            expense.id,
            Decimal("10.00"),
        )
        assert nomi.find_supplier_credit_note_by_source_id("credit-7") == created
        assert nomi.find_supplier_credit_note_by_source_id("nothing") is None
        attachment = nomi.upload_supplier_credit_note_attachment(
            created.id, "cn.pdf", b"%PDF-1.4 credit", "application/pdf", "key-cn-att"
        )
        assert attachment.size == 15
        assert [a.filename for a in nomi.get_supplier_credit_note(created.id).attachments] == [
            "cn.pdf"
        ]
        voided = nomi.void_supplier_credit_note(created.id, "key-void")
        assert voided.voided
        assert voided.voided_at is not None
        assert nomi.void_supplier_credit_note(created.id, "key-void") == voided  # replayed
        assert nomi.void_supplier_credit_note(created.id, "key-other").voided  # already voided
        again = nomi.create_supplier_credit_note(supplier_credit(ref), "key-cn-2")
        found = nomi.find_supplier_credit_notes_by_source_id("credit-7")
    assert [(f.id, f.voided) for f in found] == [(again.id, False), (created.id, True)]


def test_customer_credit_notes_and_duplicate_numbers(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        invoice = nomi.create_sales_invoice(an_invoice(ref), "key-inv")
        body = CustomerCreditNoteCreate(
            customer_id=ref["cus"]["Denplan Ltd"],
            number="CCN-7",
            date=date(2026, 1, 20),
            currency="GBP",
            total=Decimal("60.00"),
            source_id="ccredit-7",
            applies_to_id=invoice.id,
            lines=[
                InvoiceLine(
                    description="Goodwill", amount=Decimal("60.00"), category_id=ref["cat"]["200"]
                )
            ],
        )
        credit = nomi.create_customer_credit_note(body, "key-ccn")
        assert nomi.get_customer_credit_note(credit.id).number == "CCN-7"
        assert nomi.find_customer_credit_note_by_source_id("ccredit-7") == credit
        nomi.upload_customer_credit_note_attachment(
            credit.id, "c.png", b"\x89PNG", "image/png", "key-ccn-att"
        )
        with pytest.raises(RejectedError) as duplicate:
            nomi.create_customer_credit_note(body.model_copy(update={"source_id": "x"}), "k2")
        assert nomi.void_customer_credit_note(credit.id, "key-v").voided
    assert duplicate.value.codes == [ProblemCode.DUPLICATE_NUMBER]


def test_void_refuses_a_paid_invoice_and_a_locked_period(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        invoice = nomi.create_sales_invoice(an_invoice(ref), "key-inv")
        nomi.add_sales_invoice_payment(
            invoice.id,
            PaymentCreate(
                bank_account_id=ref["bank"]["Business Current Account"],
                date=date(2026, 1, 16),
                amount=Decimal("10.00"),
            ),
            "key-pay",
        )
        with pytest.raises(RejectedError) as paid:
            nomi.void_sales_invoice(invoice.id, "key-void-inv")
        expense = nomi.create_expense(three_lines(ref), "key-e")
        connected.sandbox.admin.patch(
            f"/tenants/{connected.tenant_id}", json={"lock_date": "2026-01-31"}
        ).raise_for_status()
        with pytest.raises(RejectedError) as locked:
            nomi.void_expense(expense.id, "key-void-e")
        assert not nomi.get_expense(expense.id).voided
        assert nomi.find_sales_invoice_by_source_id("sale-77") == nomi.get_sales_invoice(invoice.id)
    assert (paid.value.status, paid.value.codes) == (409, [ProblemCode.HAS_PAYMENTS])
    assert locked.value.codes == [ProblemCode.PERIOD_LOCKED]


def test_a_void_whose_answer_is_lost_is_retried_with_its_key_and_replayed(
    connected: Connected,
) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        expense = nomi.create_expense(three_lines(ref), "key-e")
        connected.sandbox.fault(
            "commit_then_drop",
            tenant_id=connected.tenant_id,
            path=f"/api/v1/expenses/{expense.id}/void",
            count=1,
        )
        voided = nomi.void_expense(expense.id, "key-void")
    assert voided.voided
    assert voided.version == 2
    replays = [
        r
        for r in connected.sandbox.admin.get("/requests").json()
        if r["path"].endswith("/void") and r["replayed"]
    ]
    assert replays, "the retry with the same key was answered from the stored response"


def test_a_void_that_keeps_failing_is_outcome_unknown(connected: Connected) -> None:
    with connected.client() as nomi:
        ref = refs(nomi)
        expense = nomi.create_expense(three_lines(ref), "key-e")
        connected.sandbox.fault(
            "server_error", tenant_id=connected.tenant_id, path=f"/api/v1/expenses/{expense.id}"
        )
        with pytest.raises(OutcomeUnknownError):
            nomi.void_expense(expense.id, "key-void")
