"""What one item publishes to Nomi as: request bodies, idempotency keys and attachment names.

Pure functions of a stored ``Item`` and its ``Resolution`` (no I/O), used by
``connector.publishing.plan`` to build every body of an item before its first Nomi call: the same
item, generation and resolution always give the same body (Nomi then replays instead of creating).
"""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

from connector.rules.facts import Resolution
from connector.rules.names import matching_key
from connector.rules.vocabulary import AttemptStep, ItemKind
from connector.store.models import Item
from nomi.models import ContactCreate, ExpenseCreate, InvoiceLine, PaymentCreate, SalesInvoiceCreate

_EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/heic": ".heic",
}


def contact_key(connection_id: uuid.UUID, kind: str, name: str) -> str:
    """The Idempotency-Key of creating a contact: one per (connection, kind, normalised name).

    Derived from the contact, not the item, so every item of the same new supplier (in any batch
    or run within Nomi's 24-hour key window) asks for the same single contact.

    Args:
        connection_id: The business's connection.
        kind: ``supplier`` or ``customer``.
        name: The contact's name as written on the item.

    Returns:
        64 lowercase hex characters. Two names share a key exactly when they share a matching
        key (``connector.rules.names``); the text hashed is unambiguous because a matching key holds
        no ``:``.

    Raises:
        UnmatchableNameError: The name has no letter or digit (never a key shared by all such
            names, issue 15).
    """
    text = f"{connection_id}:{kind}:{matching_key(name)}:{AttemptStep.CONTACT}"
    return hashlib.sha256(text.encode()).hexdigest()


def contact_body(name: str, currency: str | None) -> ContactCreate:
    """The body creating a new supplier or customer named ``name``."""
    return ContactCreate(name=name.strip(), currency=currency)


def expense_body(
    item: Item, res: Resolution, *, contact_id: str | None, user_id: str | None
) -> ExpenseCreate:
    """``POST /expenses`` for a cost item (``company``) or an expense claim (``claim``).

    Args:
        item: The claimed item.
        res: Its resolution (ready).
        contact_id: The Nomi supplier id, if the item has a supplier.
        user_id: The claimant's Nomi user id (claims only).

    Returns:
        The request body; ``source_id`` is the item id.
    """
    claim = item.kind == ItemKind.EXPENSE_CLAIM
    assert item.date is not None
    assert res.total is not None
    assert res.category_id is not None
    return ExpenseCreate(
        kind="claim" if claim else "company",
        user_id=user_id if claim else None,
        supplier_id=contact_id,
        date=item.date,
        currency=item.currency,
        reference=item.reference,
        total=res.total,
        tax_rate_id=res.tax_rate_id,
        tax_amount=res.tax if res.tax_rate_id is not None else None,
        category_id=res.category_id,
        description=res.description,
        paid_from_bank_account_id=res.bank_account_id if not claim and res.paid else None,
        source_id=str(item.id),
    )


def invoice_number(item: Item) -> str:
    """The sales invoice number: the item's reference, else one derived from the item id."""
    return (item.reference or "").strip() or f"NC-{str(item.id)[:8].upper()}"


def sales_invoice_body(item: Item, res: Resolution, *, contact_id: str) -> SalesInvoiceCreate:
    """``POST /sales-invoices`` with one line (gross amount, category, tax rate, tax amount)."""
    assert item.date is not None
    assert res.total is not None
    assert res.category_id is not None
    line = InvoiceLine(
        description=res.description or item.reference or "",
        amount=res.total,
        category_id=res.category_id,
        tax_rate_id=res.tax_rate_id,
        tax_amount=res.tax if res.tax is not None else Decimal("0.00"),
    )
    return SalesInvoiceCreate(
        customer_id=contact_id,
        number=invoice_number(item),
        date=item.date,
        due_date=item.due_date,
        currency=item.currency,
        reference=item.reference,
        lines=[line],
        total=res.total,
        source_id=str(item.id),
    )


def payment_body(item: Item, res: Resolution) -> PaymentCreate | None:
    """The payment of a paid sales item into its linked bank account, or None."""
    if item.kind != ItemKind.SALES or not res.paid or res.bank_account_id is None:
        return None
    assert item.date is not None
    assert res.total is not None
    return PaymentCreate(bank_account_id=res.bank_account_id, date=item.date, amount=res.total)


def attachment_name(item: Item) -> str:
    """The file name of the item's document image in Nomi (stable, so a retry replaces)."""
    extension = _EXTENSIONS.get((item.image_content_type or "").lower(), "")
    return f"document-{item.id}{extension}"
