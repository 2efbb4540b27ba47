"""Business validation of documents, payments and voids, with the stable error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.api.checks import Checks, Errors, err, money
from sandbox.api.currency import known
from sandbox.api.problems import ProblemError
from sandbox.api.schemas import (
    ContactCreate,
    CustomerCreditNoteCreate,
    ExpenseCreate,
    PaymentCreate,
    SalesInvoiceCreate,
    SupplierCreditNoteCreate,
)


class Validator(Checks):
    """Checks a tenant's write requests against its lists and lock date."""

    def contact(self, body: ContactCreate) -> None:
        """Validate a new contact's default tax rate and category.

        Raises:
            ProblemError: 400 when one of them does not exist.
        """
        errors: Errors = []
        if not known(body.currency):
            err(errors, "currency", "currency_unknown", f"{body.currency} is not ISO 4217")
        self._ref(errors, "tax_rate", "default_tax_rate_id", body.default_tax_rate_id)
        self._ref(errors, "category", "default_category_id", body.default_category_id)
        self._raise(errors)

    def expense(self, body: ExpenseCreate) -> Decimal:
        """Validate a new expense (single form or lines).

        Returns:
            The exchange rate it is booked at.

        Raises:
            ProblemError: 400 with every problem found (or at once for both forms sent).
        """
        single = (body.category_id, body.tax_rate_id, body.tax_amount)
        if body.lines is not None and any(v is not None for v in single):
            raise ProblemError(
                400,
                "Send lines[] or category_id/tax_rate_id/tax_amount, not both",
                code="invalid",
                field="lines",
            )
        if body.lines is None and body.category_id is None:
            raise ProblemError(
                400, "An expense needs category_id or lines[]", code="invalid", field="category_id"
            )
        errors: Errors = []
        total = money(body.total)
        if body.kind == "claim":
            if body.user_id is None:
                err(errors, "user_id", "contact_unknown", "An expense claim needs user_id")
            self._ref(errors, "user", "user_id", body.user_id)
        self._contact(errors, "supplier", "supplier_id", body.supplier_id)
        if body.lines is not None:
            self._adds_up(
                errors, self._net_lines(errors, body.lines, "EXPENSE", "PURCHASES"), body.total
            )
        else:
            assert body.category_id is not None
            if total <= 0:
                err(errors, "total", "totals_mismatch", "The total must be positive")
            self._category(errors, "category_id", body.category_id, "EXPENSE")
            tax = money(body.tax_amount)
            self._tax(
                errors, "tax_rate_id", body.tax_rate_id, "PURCHASES", total, tax, "tax_amount"
            )
        rate = self._currency(errors, body.currency, body.exchange_rate, body.date)
        self._bank(
            errors, "paid_from_bank_account_id", body.paid_from_bank_account_id, body.currency
        )
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
        assert rate is not None
        return rate

    def sales_invoice(self, body: SalesInvoiceCreate) -> Decimal:
        """Validate a new sales invoice.

        Returns:
            The exchange rate it is booked at.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        self._contact(errors, "customer", "customer_id", body.customer_id)
        if self.store.find("sales_invoice", self.tenant["id"], ukey=body.number):
            err(
                errors, "number", "duplicate_number", f"Invoice number {body.number} already exists"
            )
        self._adds_up(errors, self._gross_lines(errors, body.lines, "INCOME"), body.total)
        if body.due_date is not None and body.due_date < body.date:
            err(errors, "due_date", "invalid_date", "The due date is before the invoice date")
        rate = self._currency(errors, body.currency, body.exchange_rate, body.date)
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
        assert rate is not None
        return rate

    def supplier_credit_note(self, body: SupplierCreditNoteCreate) -> Decimal:
        """Validate a new supplier credit note.

        Returns:
            The exchange rate it is booked at.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        self._contact(errors, "supplier", "supplier_id", body.supplier_id)
        self._adds_up(
            errors, self._net_lines(errors, body.lines, "EXPENSE", "PURCHASES"), body.total
        )
        self._applies_to(
            errors,
            "expense",
            "supplier_credit_note",
            body.applies_to_id,
            ("supplier_id", body.supplier_id),
            body.currency,
            money(body.total),
        )
        rate = self._currency(errors, body.currency, body.exchange_rate, body.date)
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
        assert rate is not None
        return rate

    def customer_credit_note(self, body: CustomerCreditNoteCreate) -> Decimal:
        """Validate a new customer credit note (its number unique among customer credit notes).

        Returns:
            The exchange rate it is booked at.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        self._contact(errors, "customer", "customer_id", body.customer_id)
        if self.store.find("customer_credit_note", self.tenant["id"], ukey=body.number):
            err(
                errors,
                "number",
                "duplicate_number",
                f"Credit note number {body.number} already exists",
            )
        self._adds_up(errors, self._gross_lines(errors, body.lines, "INCOME"), body.total)
        self._applies_to(
            errors,
            "sales_invoice",
            "customer_credit_note",
            body.applies_to_id,
            ("customer_id", body.customer_id),
            body.currency,
            money(body.total),
        )
        rate = self._currency(errors, body.currency, body.exchange_rate, body.date)
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
        assert rate is not None
        return rate

    def void(self, kind: str, doc: dict[str, Any]) -> None:
        """Check that a document can be voided.

        Raises:
            ProblemError: 409 ``already_voided`` or ``has_payments``; 400 ``period_locked``.
        """
        what = kind.replace("_", " ")
        if doc.get("status") == "VOIDED":
            raise ProblemError(409, f"The {what} is already voided", code="already_voided")
        lock = self.tenant.get("lock_date")
        if lock and doc["date"] <= lock:
            raise ProblemError(
                400,
                f"The {what} is dated {doc['date']}, in the period up to {lock} that is locked",
                code="period_locked",
                field="date",
            )
        if doc.get("payments"):
            raise ProblemError(
                409,
                f"The {what} has payments; remove them before voiding it",
                code="has_payments",
            )

    def payment(self, invoice: dict[str, Any], body: PaymentCreate) -> None:
        """Validate a payment against an invoice.

        Raises:
            ProblemError: 400 with every problem found.
        """
        if invoice.get("status") == "VOIDED":
            raise ProblemError(409, "The sales invoice is voided", code="already_voided")
        errors: Errors = []
        self._bank(errors, "bank_account_id", body.bank_account_id, invoice["currency"])
        amount = money(body.amount)
        if amount <= 0 or amount > money(invoice["amount_due"]):
            err(
                errors,
                "amount",
                "totals_mismatch",
                f"The amount must be positive and at most {invoice['amount_due']}",
            )
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
