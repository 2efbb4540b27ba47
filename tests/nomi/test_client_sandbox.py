"""NomiClient against the sandbox over real HTTP: reads, writes, idempotency, faults."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import httpx
import pytest

from nomi.client import MAX_REFRESHES_PER_REQUEST
from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    OutcomeUnknownError,
    RateLimitError,
    RejectedError,
    ServerError,
    TransientError,
)
from nomi.models import ContactCreate, ExpenseCreate, InvoiceLine, PaymentCreate, SalesInvoiceCreate
from nomi.retry import RetryPolicy
from tests.nomi.conftest import Connected


def fault(connected: Connected, name: str, **spec: object) -> None:
    """Switch a fault on for the connected organisation."""
    connected.sandbox.fault(name, tenant_id=connected.tenant_id, **spec)


def late_in_the_minute(connected: Connected, second: float = 58.5) -> None:
    """Move the sandbox clock to ``second`` of its minute: an injected 429 says Retry-After 2."""
    now = connected.sandbox.state.clock.time()
    advance = (second - now % 60) % 60
    connected.sandbox.admin.post("/clock/advance", json={"seconds": advance}).raise_for_status()


def reference(nomi) -> dict:
    category = next(c for c in nomi.iter_categories() if c.type == "EXPENSE")
    income = next(c for c in nomi.iter_categories() if c.type == "INCOME")
    rates = list(nomi.iter_tax_rates())
    standard = next(r for r in rates if r.rate == Decimal("20") and r.applies_to != "SALES")
    return {
        "category": category,
        "income": income,
        "rate": standard,
        "supplier": next(iter(nomi.iter_suppliers())),
        "customer": next(iter(nomi.iter_customers())),
        "bank": next(iter(nomi.iter_bank_accounts())),
    }


def an_expense(ref: dict, source_id: str) -> ExpenseCreate:
    return ExpenseCreate(
        kind="company",
        supplier_id=ref["supplier"].id,
        date=date(2026, 1, 15),
        currency="GBP",
        total=Decimal("120.00"),
        tax_rate_id=ref["rate"].id,
        tax_amount=Decimal("20.00"),
        category_id=ref["category"].id,
        source_id=source_id,
    )


def test_connections_list_the_granted_organisation(connected: Connected) -> None:
    with connected.client() as nomi:
        orgs = nomi.connections()
    assert [o.tenant_id for o in orgs] == [connected.tenant_id]
    assert orgs[0].tenant_name == "Bright Smile Dental Ltd"


def test_delete_connection_takes_the_organisation_out_of_the_consent(
    connected: Connected,
) -> None:
    with connected.client() as nomi:
        (org,) = nomi.connections()
        assert org.id
        nomi.delete_connection(org.id)
        assert nomi.connections() == []
        with pytest.raises(ConnectionLostError):
            list(nomi.iter_categories())  # the tenant is no longer granted: 403
        with pytest.raises(RejectedError) as caught:
            nomi.delete_connection(org.id)  # gone: 404, not a crash
    assert caught.value.status == 404


def test_a_failing_delete_connection_is_retried_like_a_read(connected: Connected) -> None:
    # No Nomi-Tenant-Id on /connections: a fault for every organisation.
    connected.sandbox.fault("server_error", method="DELETE", path="/connections/", count=1)
    with connected.client() as nomi:
        (org,) = nomi.connections()
        assert org.id
        nomi.delete_connection(org.id)
        assert nomi.connections() == []
    deletes = [
        r
        for r in connected.sandbox.admin.get("/requests").json()
        if r["method"] == "DELETE" and r["path"].startswith("/connections/")
    ]
    assert [r["status"] for r in deletes][:1] == [500]


def test_reference_lists_are_typed_and_bookmarked(connected: Connected) -> None:
    with connected.client() as nomi:
        rates = nomi.iter_tax_rates(include_archived=True)
        rows = list(rates)
        users = nomi.list_users()
    assert {r.rate for r in rows} >= {Decimal("20"), Decimal("5"), Decimal("0")}
    assert rates.server_time is not None
    assert users


def test_suppliers_stream_in_pages_and_incremental_sync_sees_changes(connected: Connected) -> None:
    admin = connected.sandbox.admin
    admin.post(f"/tenants/{connected.tenant_id}/suppliers", json={"count": 1200}).raise_for_status()
    with connected.client() as nomi:
        everything = nomi.iter_suppliers(page_size=250)
        ids = [s.id for s in everything]
        assert len(ids) == len(set(ids)) >= 1200
        assert everything.pages >= 5
        bookmark = everything.server_time
        admin.post("/clock/advance", json={"seconds": 5}).raise_for_status()
        changed = ids[10]
        admin.patch(
            f"/tenants/{connected.tenant_id}/suppliers/{changed}", json={"status": "ARCHIVED"}
        ).raise_for_status()
        since = nomi.iter_suppliers(updated_since=bookmark, include_archived=True)
        delta = list(since)
        hidden = list(nomi.iter_suppliers(updated_since=bookmark))
    assert [s.id for s in delta] == [changed]
    assert delta[0].status == "ARCHIVED"
    assert hidden == []


def test_page_drift_is_detected_and_no_supplier_is_missed(connected: Connected) -> None:
    admin = connected.sandbox.admin
    admin.post(f"/tenants/{connected.tenant_id}/suppliers", json={"count": 60}).raise_for_status()
    with connected.client() as nomi:
        before = {s.id for s in nomi.iter_suppliers(page_size=20)}
        fault(connected, "page_drift", method="GET", path="/api/v1/suppliers", count=1)
        result = nomi.iter_suppliers(page_size=20)
        seen = {s.id for s in result}
    assert result.drift_detected
    assert result.rescanned
    assert seen == before


def test_writes_create_supplier_expense_attachment_invoice_and_payment(
    connected: Connected,
) -> None:
    with connected.client() as nomi:
        ref = reference(nomi)
        supplier = nomi.create_supplier(ContactCreate(name="Acme Dental Supplies"), "sup-1")
        customer = nomi.create_customer(ContactCreate(name="Mr Patient"), "cus-1")
        expense = nomi.create_expense(an_expense(ref, "item-1"), "exp-1")
        attachment = nomi.upload_expense_attachment(
            expense.id, "receipt (1).pdf", b"%PDF-1.4 test", "application/pdf", "att-1"
        )
        invoice = nomi.create_sales_invoice(
            SalesInvoiceCreate(
                customer_id=customer.id,
                number="INV-001",
                date=date(2026, 1, 20),
                currency="GBP",
                lines=[
                    InvoiceLine(
                        description="Check-up",
                        amount=Decimal("60.00"),
                        category_id=ref["income"].id,
                    )
                ],
                total=Decimal("60.00"),
                source_id="item-2",
            ),
            "inv-1",
        )
        payment = nomi.add_sales_invoice_payment(
            invoice.id,
            PaymentCreate(
                bank_account_id=ref["bank"].id, date=date(2026, 1, 21), amount=Decimal("60.00")
            ),
            "pay-1",
        )
        found = nomi.find_expense_by_source_id("item-1")
        found_invoice = nomi.find_sales_invoice_by_source_id("item-2")
        missing = nomi.find_expense_by_source_id("never-published")
    assert supplier.name == "Acme Dental Supplies"
    assert expense.total == Decimal("120.00")
    assert attachment.filename == "receipt (1).pdf"
    assert payment.amount == Decimal("60.00")
    assert found is not None
    assert found.id == expense.id
    assert found_invoice is not None
    assert found_invoice.id == invoice.id
    assert missing is None


def test_a_validation_rejection_keeps_its_codes(connected: Connected) -> None:
    fault(
        connected,
        "validation",
        method="POST",
        path="/api/v1/expenses",
        count=1,
        params={"code": "period_locked"},
    )
    with connected.client() as nomi, pytest.raises(RejectedError) as caught:
        nomi.create_expense(an_expense(reference(nomi), "item-9"), "exp-9")
    assert "period_locked" in caught.value.codes


def test_commit_then_drop_is_retried_with_the_same_key_and_creates_one_record(
    connected: Connected,
) -> None:
    fault(connected, "commit_then_drop", method="POST", path="/api/v1/expenses", count=1)
    with connected.client() as nomi:
        created = nomi.create_expense(an_expense(reference(nomi), "item-drop"), "exp-drop")
    admin = connected.sandbox.admin
    assert admin.get("/duplicates").json()["expenses"] == {}
    records = admin.get("/records", params={"tenant_id": connected.tenant_id, "kind": "expense"})
    assert [r["id"] for r in records.json() if r.get("source_id") == "item-drop"] == [created.id]
    keys = [
        r.get("idempotency_key")
        for r in admin.get("/requests", params={"limit": 50}).json()
        if r.get("method") == "POST" and r.get("path") == "/api/v1/expenses"
    ]
    assert keys == ["exp-drop", "exp-drop"]


def test_a_write_that_keeps_dropping_is_outcome_unknown_and_found_by_source_id(
    connected: Connected,
) -> None:
    fault(connected, "commit_then_drop", method="POST", path="/api/v1/expenses", count=1)
    with connected.client(retry=RetryPolicy(max_attempts=1)) as nomi:
        ref = reference(nomi)
        with pytest.raises(OutcomeUnknownError):
            nomi.create_expense(an_expense(ref, "item-lost"), "exp-lost")
        assert nomi.find_expense_by_source_id("item-lost") is not None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_html_server_errors_are_retried(connected: Connected, status: int) -> None:
    fault(
        connected,
        "server_error",
        method="GET",
        path="/api/v1/tax-rates",
        count=2,
        params={"status": status},
    )
    with connected.client() as nomi:
        assert list(nomi.iter_tax_rates())


def test_persistent_server_errors_end_as_server_error(connected: Connected) -> None:
    fault(connected, "server_error", method="GET", path="/api/v1/tax-rates", params={"status": 503})
    policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    with connected.client(retry=policy) as nomi, pytest.raises(ServerError):
        list(nomi.iter_tax_rates())


def test_connection_resets_are_retried(connected: Connected) -> None:
    fault(connected, "connection_reset", method="GET", path="/api/v1/categories", count=2)
    with connected.client() as nomi:
        assert list(nomi.iter_categories())


def test_retry_after_is_honoured(connected: Connected) -> None:
    with connected.client() as nomi:
        late_in_the_minute(connected)
        fault(connected, "rate_limit_minute", method="GET", path="/api/v1/bank-accounts", count=1)
        started = time.monotonic()
        assert list(nomi.iter_bank_accounts())
        waited = time.monotonic() - started
    statuses = [
        r.get("status")
        for r in connected.sandbox.admin.get("/requests").json()
        if r.get("path") == "/api/v1/bank-accounts"
    ]
    assert 429 in statuses
    assert 1.0 <= waited < 4.0


@pytest.mark.parametrize("name", ["rate_limit_concurrent", "rate_limit_app"])
def test_other_429s_are_retried(connected: Connected, name: str) -> None:
    late_in_the_minute(connected)
    fault(connected, name, method="GET", path="/api/v1/bank-accounts", count=1)
    with connected.client() as nomi:
        assert list(nomi.iter_bank_accounts())


def test_a_429_past_the_retry_cap_is_raised(connected: Connected) -> None:
    fault(connected, "rate_limit_minute", method="GET", path="/api/v1/bank-accounts")
    policy = RetryPolicy(max_retry_after=0.1)
    with connected.client(retry=policy) as nomi, pytest.raises(RateLimitError):
        list(nomi.iter_bank_accounts())


def test_the_daily_limit_is_raised_without_sleeping(connected: Connected) -> None:
    fault(connected, "rate_limit_day", method="GET", path="/api/v1/bank-accounts")
    with connected.client() as nomi:
        started = time.monotonic()
        with pytest.raises(DailyLimitError) as caught:
            list(nomi.iter_bank_accounts())
    assert time.monotonic() - started < 2
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 60


def test_a_token_rejected_before_expiry_is_refreshed_once(connected: Connected) -> None:
    fault(connected, "token_rejected", method="GET", path="/api/v1/categories", count=1)
    with connected.client() as nomi:
        assert list(nomi.iter_categories())
        assert nomi._tokens.refreshes == 1  # type: ignore[attr-defined]


def test_a_token_rejected_after_every_fresh_refresh_is_transient_not_a_lost_connection(
    connected: Connected,
) -> None:
    fault(connected, "token_rejected", method="GET", path="/api/v1/categories")
    with connected.client() as nomi:
        with pytest.raises(TransientError) as caught:
            list(nomi.iter_categories())
        assert nomi._tokens.refreshes == MAX_REFRESHES_PER_REQUEST  # type: ignore[attr-defined]
    assert not isinstance(caught.value, ConnectionLostError)
    assert caught.value.status == 401


def test_a_token_rejected_twice_is_refreshed_twice_and_answers(connected: Connected) -> None:
    fault(connected, "token_rejected", method="GET", path="/api/v1/categories", count=2)
    with connected.client() as nomi:
        assert list(nomi.iter_categories())
        assert nomi._tokens.refreshes == 2  # type: ignore[attr-defined]


def test_a_revoked_refresh_token_is_a_lost_connection(connected: Connected) -> None:
    fault(connected, "refresh_revoked", count=1)
    fault(connected, "token_rejected", method="GET", path="/api/v1/categories", count=1)
    with connected.client() as nomi, pytest.raises(ConnectionLostError):
        list(nomi.iter_categories())


def test_an_expired_consent_is_a_lost_connection(connected: Connected) -> None:
    fault(connected, "consent_expired", count=1)
    with connected.client() as nomi, pytest.raises(ConnectionLostError):
        list(nomi.iter_categories())


def test_an_attachment_failing_once_after_create_is_retried(connected: Connected) -> None:
    fault(connected, "attachment_fail_once", method="PUT")
    with connected.client() as nomi:
        expense = nomi.create_expense(an_expense(reference(nomi), "item-att"), "exp-att")
        attachment = nomi.upload_expense_attachment(
            expense.id, "r.png", b"\x89PNG\r\n\x1a\n", "image/png", "att-att"
        )
    assert attachment.filename == "r.png"


def test_a_slow_answer_times_out_and_is_retried(connected: Connected) -> None:
    fault(connected, "latency", method="GET", path="/api/v1/users", count=1, params={"seconds": 2})
    http = httpx.Client(timeout=httpx.Timeout(0.5))
    with connected.client(http=http) as nomi:
        started = time.monotonic()
        assert nomi.list_users()
    http.close()
    assert 0.5 <= time.monotonic() - started < 2.0
