"""The checks business validation is made of: references, lines, totals, currency, lock date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sandbox.api.currency import daily_rate, known
from sandbox.api.problems import ProblemError
from sandbox.api.schemas import ExpenseLineIn, InvoiceLineIn
from sandbox.store import Store

Errors = list[dict[str, Any]]
CENT = Decimal("0.01")


def money(value: str | None) -> Decimal:
    """A money string as a Decimal (None is zero)."""
    return Decimal(value or "0").quantize(CENT)


def err(errors: Errors, field: str, code: str, message: str) -> None:
    """Record one field error (its field, stable code and message)."""
    errors.append({"field": field, "code": code, "message": message})


class Checks:
    """The checks of one tenant's write requests, against its lists and its lock date."""

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
            err(errors, field, code, f"No {kind.replace('_', ' ')} with id {ref_id}")
        return doc

    def _category(self, errors: Errors, field: str, ref_id: str, wanted: str) -> None:
        doc = self._ref(errors, "category", field, ref_id)
        if doc is None:
            return
        if doc["status"] == "ARCHIVED":
            err(errors, field, "account_archived", f"Category {doc['code']} is archived")
        elif doc["type"] != wanted:
            err(errors, field, "category_wrong_type", f"Category {doc['code']} is not {wanted}")

    def _tax(
        self,
        errors: Errors,
        field: str,
        rate_id: str | None,
        side: str,
        gross: Decimal,
        tax: Decimal,
        tax_field: str,
        *,
        net: bool = False,
    ) -> None:
        """Check a tax amount against its rate; ``gross`` is the net amount when ``net``."""
        if tax < 0 or tax > max(gross, Decimal(0)):
            err(
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
            err(errors, field, "tax_rate_archived", f"Tax rate {doc['name']} is archived")
            return
        if doc["applies_to"] not in ("BOTH", side):
            err(
                errors,
                field,
                "tax_rate_wrong_kind",
                f"Tax rate {doc['name']} applies to {doc['applies_to']} only",
            )
            return
        rate = Decimal(doc["rate"])
        if rate == 0 and tax != 0:  # a real ledger allows no tolerance on a zero rate
            err(
                errors,
                tax_field,
                "totals_mismatch",
                f"Tax {tax} on {doc['name']} (0%): a zero-rate line must carry 0 tax",
            )
            return
        share = gross * rate / (Decimal(100) if net else Decimal(100) + rate)
        expected = share.quantize(CENT)
        if abs(expected - tax) > self.tolerance:
            on = "net " if net else ""
            err(
                errors,
                tax_field,
                "totals_mismatch",
                f"Tax {tax} does not match {doc['name']} on {on}{gross} "
                f"(expected about {expected})",
            )

    def _currency(
        self, errors: Errors, currency: str, exchange_rate: str | None, day: dt.date
    ) -> Decimal | None:
        """The exchange rate a document is booked at (its own, else Nomi's daily rate)."""
        base = str(self.tenant["currency"])
        if not known(currency):
            err(errors, "currency", "currency_unknown", f"{currency} is not an ISO 4217 currency")
            return None
        if exchange_rate is not None:
            rate = Decimal(exchange_rate)
            if currency == base and rate != 1:
                err(
                    errors,
                    "exchange_rate",
                    "invalid",
                    f"A document in the base currency {base} has exchange rate 1",
                )
                return None
            if rate <= 0:
                err(errors, "exchange_rate", "invalid", "The exchange rate must be positive")
                return None
            return rate
        daily = daily_rate(currency, base, day)
        if daily is None:
            err(
                errors,
                "exchange_rate",
                "currency_unknown",
                f"Nomi has no daily rate from {currency} to {base}; send exchange_rate",
            )
        return daily

    def _bank(self, errors: Errors, field: str, bank_id: str | None, currency: str) -> None:
        """A bank account that exists, is active and is in the document's or base currency."""
        bank = self._ref(errors, "bank_account", field, bank_id)
        if bank is None:
            return
        if bank["status"] == "ARCHIVED":
            err(errors, field, "account_archived", f"Bank account {bank['name']} is archived")
        elif bank["currency"] not in (currency, self.tenant["currency"]):
            err(
                errors,
                field,
                "currency_mismatch",
                f"Bank account {bank['name']} is in {bank['currency']}, not {currency} "
                f"or the base currency {self.tenant['currency']}",
            )

    def _contact(self, errors: Errors, kind: str, field: str, contact_id: str | None) -> None:
        contact = self._ref(errors, kind, field, contact_id)
        if contact is not None and contact["status"] == "ARCHIVED":
            name = kind.capitalize()
            err(errors, field, "contact_archived", f"{name} {contact['name']} is archived")

    def _net_lines(
        self, errors: Errors, lines: Sequence[ExpenseLineIn], wanted: str, side: str
    ) -> Decimal:
        """Check net-form lines; returns what they add up to (net plus tax)."""
        total = Decimal(0)
        for n, line in enumerate(lines):
            net, tax = money(line.net_amount), money(line.tax_amount)
            self._category(errors, f"lines[{n}].category_id", line.category_id, wanted)
            self._tax(
                errors,
                f"lines[{n}].tax_rate_id",
                line.tax_rate_id,
                side,
                net,
                tax,
                f"lines[{n}].tax_amount",
                net=True,
            )
            total += net + tax
        return total

    def _gross_lines(self, errors: Errors, lines: Sequence[InvoiceLineIn], wanted: str) -> Decimal:
        """Check invoice-form lines (amount includes tax); returns their sum."""
        for n, line in enumerate(lines):
            self._category(errors, f"lines[{n}].category_id", line.category_id, wanted)
            self._tax(
                errors,
                f"lines[{n}].tax_rate_id",
                line.tax_rate_id,
                "SALES",
                money(line.amount),
                money(line.tax_amount),
                f"lines[{n}].tax_amount",
            )
        return sum((money(line.amount) for line in lines), Decimal(0))

    def _adds_up(self, errors: Errors, lines_total: Decimal, total: str) -> None:
        if lines_total != money(total):
            err(
                errors,
                "total",
                "totals_mismatch",
                f"The lines add up to {lines_total}, not the total {money(total)}",
            )
        elif money(total) <= 0:
            err(errors, "total", "totals_mismatch", "The total must be positive")

    def _applies_to(
        self,
        errors: Errors,
        kind: str,
        credit_kind: str,
        applies_to_id: str | None,
        contact: tuple[str, str],
        currency: str,
        total: Decimal,
    ) -> None:
        """What a credit note credits: live, same contact and currency, not over-credited."""
        if applies_to_id is None:
            return
        doc = self._ref(errors, kind, "applies_to_id", applies_to_id)
        if doc is None:
            return
        what = kind.replace("_", " ")
        field, contact_id = contact
        if doc.get("status") == "VOIDED":
            err(errors, "applies_to_id", "already_voided", f"The {what} is voided")
        elif doc.get(field) != contact_id:
            err(
                errors,
                "applies_to_id",
                "contact_mismatch",
                f"The {what} belongs to another {field.removesuffix('_id')}",
            )
        elif doc["currency"] != currency:
            err(
                errors,
                "applies_to_id",
                "currency_mismatch",
                f"The {what} is in {doc['currency']}, the credit note in {currency}",
            )
        else:
            credited = sum(
                (
                    money(c["total"])
                    for c in self.store.applying_to(credit_kind, self.tenant["id"], applies_to_id)
                    if c.get("status") != "VOIDED"
                ),
                Decimal(0),
            )
            if credited + total > money(doc["total"]):
                err(
                    errors,
                    "total",
                    "totals_mismatch",
                    f"Credits of {credited + total} would exceed the {what}'s total {doc['total']}",
                )

    def _period(self, errors: Errors, field: str, date: str) -> None:
        lock = self.tenant.get("lock_date")
        if lock and date <= lock:
            err(errors, field, "period_locked", f"The period up to {lock} is locked")

    @staticmethod
    def _raise(errors: Errors) -> None:
        if errors:
            raise ProblemError(400, "; ".join(e["message"] for e in errors), errors=errors)
