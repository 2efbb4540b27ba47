"""Business validation of expenses, sales invoices and payments, with the stable error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.api.problems import ProblemError
from sandbox.api.schemas import ContactCreate, ExpenseCreate, PaymentCreate, SalesInvoiceCreate
from sandbox.store import Store

Errors = list[dict[str, Any]]
CENT = Decimal("0.01")


def money(value: str | None) -> Decimal:
    """A money string as a Decimal (None is zero)."""
    return Decimal(value or "0").quantize(CENT)


def _err(errors: Errors, field: str, code: str, message: str) -> None:
    errors.append({"field": field, "code": code, "message": message})


class Validator:
    """Checks a tenant's write requests against its lists and lock date."""

    def __init__(self, store: Store, tenant: dict[str, Any], tolerance: Decimal) -> None:
        self.store = store
        self.tenant = tenant
        self.tolerance = tolerance

    def _ref(
        self, errors: Errors, kind: str, field: str, ref_id: str | None
    ) -> dict[str, Any] | None:
        if ref_id is None:
            return None
        doc = self.store.get(kind, self.tenant["id"], ref_id)
        if doc is None:
            code = (
                "contact_unknown"
                if kind in ("supplier", "customer", "user")
                else "reference_unknown"
            )
            _err(errors, field, code, f"No {kind.replace('_', ' ')} with id {ref_id}")
        return doc

    def _category(self, errors: Errors, field: str, ref_id: str, wanted: str) -> None:
        doc = self._ref(errors, "category", field, ref_id)
        if doc is None:
            return
        if doc["status"] == "ARCHIVED":
            _err(errors, field, "account_archived", f"Category {doc['code']} is archived")
        elif doc["type"] != wanted:
            _err(errors, field, "category_wrong_type", f"Category {doc['code']} is not {wanted}")

    def _tax(
        self,
        errors: Errors,
        field: str,
        rate_id: str | None,
        side: str,
        gross: Decimal,
        tax: Decimal,
        tax_field: str,
    ) -> None:
        if tax < 0 or tax > max(gross, Decimal(0)):
            _err(
                errors,
                tax_field,
                "totals_mismatch",
                "The tax amount must be between 0 and the total",
            )
            return
        doc = self._ref(errors, "tax_rate", field, rate_id)
        if doc is None:
            return
        if doc["status"] == "ARCHIVED":
            _err(errors, field, "tax_rate_archived", f"Tax rate {doc['name']} is archived")
            return
        if doc["applies_to"] not in ("BOTH", side):
            _err(
                errors,
                field,
                "tax_rate_wrong_kind",
                f"Tax rate {doc['name']} applies to {doc['applies_to']} only",
            )
            return
        rate = Decimal(doc["rate"])
        if rate == 0 and tax != 0:  # a real ledger allows no tolerance on a zero rate
            _err(
                errors,
                tax_field,
                "totals_mismatch",
                f"Tax {tax} on {doc['name']} (0%): a zero-rate line must carry 0 tax",
            )
            return
        expected = (gross * rate / (Decimal(100) + rate)).quantize(CENT)
        if abs(expected - tax) > self.tolerance:
            _err(
                errors,
                tax_field,
                "totals_mismatch",
                f"Tax {tax} does not match {doc['name']} on {gross} (expected about {expected})",
            )

    def _period(self, errors: Errors, field: str, date: str) -> None:
        lock = self.tenant.get("lock_date")
        if lock and date <= lock:
            _err(errors, field, "period_locked", f"The period up to {lock} is locked")

    @staticmethod
    def _raise(errors: Errors) -> None:
        if errors:
            raise ProblemError(400, "; ".join(e["message"] for e in errors), errors=errors)

    def contact(self, body: ContactCreate) -> None:
        """Validate a new contact's default tax rate and category.

        Raises:
            ProblemError: 400 when one of them does not exist.
        """
        errors: Errors = []
        self._ref(errors, "tax_rate", "default_tax_rate_id", body.default_tax_rate_id)
        self._ref(errors, "category", "default_category_id", body.default_category_id)
        self._raise(errors)

    def expense(self, body: ExpenseCreate) -> None:
        """Validate a new expense.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        total, tax = money(body.total), money(body.tax_amount)
        if total <= 0:
            _err(errors, "total", "totals_mismatch", "The total must be positive")
        if body.kind == "claim":
            if body.user_id is None:
                _err(errors, "user_id", "contact_unknown", "An expense claim needs user_id")
            self._ref(errors, "user", "user_id", body.user_id)
        supplier = self._ref(errors, "supplier", "supplier_id", body.supplier_id)
        if supplier is not None and supplier["status"] == "ARCHIVED":
            _err(
                errors,
                "supplier_id",
                "contact_archived",
                f"Supplier {supplier['name']} is archived",
            )
        self._category(errors, "category_id", body.category_id, "EXPENSE")
        self._tax(errors, "tax_rate_id", body.tax_rate_id, "PURCHASES", total, tax, "tax_amount")
        bank = self._ref(
            errors, "bank_account", "paid_from_bank_account_id", body.paid_from_bank_account_id
        )
        if bank is not None and bank["status"] == "ARCHIVED":
            _err(
                errors,
                "paid_from_bank_account_id",
                "account_archived",
                f"Bank account {bank['name']} is archived",
            )
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)

    def sales_invoice(self, body: SalesInvoiceCreate) -> None:
        """Validate a new sales invoice.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        customer = self._ref(errors, "customer", "customer_id", body.customer_id)
        if customer is not None and customer["status"] == "ARCHIVED":
            _err(
                errors,
                "customer_id",
                "contact_archived",
                f"Customer {customer['name']} is archived",
            )
        if self.store.find("sales_invoice", self.tenant["id"], ukey=body.number):
            _err(
                errors, "number", "duplicate_number", f"Invoice number {body.number} already exists"
            )
        for n, line in enumerate(body.lines):
            amount = money(line.amount)
            self._category(errors, f"lines[{n}].category_id", line.category_id, "INCOME")
            self._tax(
                errors,
                f"lines[{n}].tax_rate_id",
                line.tax_rate_id,
                "SALES",
                amount,
                money(line.tax_amount),
                f"lines[{n}].tax_amount",
            )
        if sum((money(line.amount) for line in body.lines), Decimal(0)) != money(body.total):
            _err(errors, "total", "totals_mismatch", "The lines do not add up to the total")
        elif money(body.total) <= 0:
            _err(errors, "total", "totals_mismatch", "The total must be positive")
        if body.due_date is not None and body.due_date < body.date:
            _err(errors, "due_date", "invalid_date", "The due date is before the invoice date")
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)

    def payment(self, invoice: dict[str, Any], body: PaymentCreate) -> None:
        """Validate a payment against an invoice.

        Raises:
            ProblemError: 400 with every problem found.
        """
        errors: Errors = []
        bank = self._ref(errors, "bank_account", "bank_account_id", body.bank_account_id)
        if bank is not None and bank["status"] == "ARCHIVED":
            _err(
                errors,
                "bank_account_id",
                "account_archived",
                f"Bank account {bank['name']} is archived",
            )
        amount = money(body.amount)
        if amount <= 0 or amount > money(invoice["amount_due"]):
            _err(
                errors,
                "amount",
                "totals_mismatch",
                f"The amount must be positive and at most {invoice['amount_due']}",
            )
        self._period(errors, "date", body.date.isoformat())
        self._raise(errors)
