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
from connector.rules.vocabulary import AttemptStep, DocumentType, ItemKind
from connector.store.models import Item
from nomi.models import (
    ContactCreate,
    CustomerCreditNoteCreate,
    ExpenseCreate,
    ExpenseLine,
    InvoiceLine,
    PaymentCreate,
    SalesInvoiceCreate,
    SupplierCreditNoteCreate,
)

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


def source_id(item: Item) -> str:
    """The ``source_id`` of the item's record: its id, then ``<id>:g<generation>`` once corrected.

    Each generation has its own, so a lookup by ``source_id`` finds that generation's record only.
    """
    generation = item.record_generation or 0
    return str(item.id) if generation == 0 else f"{item.id}:g{generation}"


def generation_step(step: str, generation: int) -> str:
    """The step name an idempotency key is built from: ``<step>:g<n>`` for a corrected generation.

    Generation 0 keeps the plain step, so the keys of items published before corrections existed
    are unchanged.
    """
    return step if not generation else f"{step}:g{generation}"


def contact_body(name: str, currency: str | None) -> ContactCreate:
    """The body creating a new supplier or customer named ``name``."""
    return ContactCreate(name=name.strip(), currency=currency)


def _currency(item: Item, res: Resolution) -> str:
    """The document's currency as it publishes (the resolution's, upper case)."""
    return res.currency or item.currency


def expense_lines(res: Resolution) -> list[ExpenseLine]:
    """The net-form lines of an expense or supplier credit note: one per resolved line.

    An item without lines gives one line of its own category, tax rate, net and tax.
    """
    if not res.lines:
        assert res.category_id is not None
        assert res.total is not None
        tax = res.tax if res.tax_rate_id is not None and res.tax is not None else Decimal("0.00")
        return [
            ExpenseLine(
                description=res.description or "",
                category_id=res.category_id,
                tax_rate_id=res.tax_rate_id,
                net_amount=res.total - tax,
                tax_amount=tax,
            )
        ]
    lines = []
    for line in res.lines:
        assert line.category_id is not None
        assert line.net is not None
        lines.append(
            ExpenseLine(
                description=line.description or res.description or "",
                category_id=line.category_id,
                tax_rate_id=line.tax_rate_id,
                net_amount=line.net,
                tax_amount=line.tax if line.tax is not None else Decimal("0.00"),
            )
        )
    return lines


def invoice_lines(item: Item, res: Resolution) -> list[InvoiceLine]:
    """The gross-form lines of a sales invoice or customer credit note, each with its category.

    An item without lines gives one line of the gross total, its category and tax rate.
    """
    if not res.lines:
        assert res.total is not None
        assert res.category_id is not None
        return [
            InvoiceLine(
                description=res.description or item.reference or "",
                amount=res.total,
                category_id=res.category_id,
                tax_rate_id=res.tax_rate_id,
                tax_amount=res.tax if res.tax is not None else Decimal("0.00"),
            )
        ]
    lines = []
    for line in res.lines:
        assert line.category_id is not None
        assert line.net is not None
        tax = line.tax if line.tax is not None else Decimal("0.00")
        lines.append(
            InvoiceLine(
                description=line.description or res.description or "",
                amount=line.net + tax,
                category_id=line.category_id,
                tax_rate_id=line.tax_rate_id,
                tax_amount=tax,
            )
        )
    return lines


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
        The request body; ``source_id`` is the item id. An item with lines sends ``lines[]``
        (each with its category and tax rate) instead of the single category and tax; a foreign
        item carries the document's exchange rate, or none so that Nomi applies its daily rate.
    """
    claim = item.kind == ItemKind.EXPENSE_CLAIM
    assert item.date is not None
    assert res.total is not None
    single: dict[str, object] = {}
    if res.lines:
        single["lines"] = expense_lines(res)
    else:
        assert res.category_id is not None
        single |= {
            "tax_rate_id": res.tax_rate_id,
            "tax_amount": res.tax if res.tax_rate_id is not None else None,
            "category_id": res.category_id,
        }
    return ExpenseCreate.model_validate(
        {
            "kind": "claim" if claim else "company",
            "user_id": user_id if claim else None,
            "supplier_id": contact_id,
            "date": item.date,
            "currency": _currency(item, res),
            "exchange_rate": res.exchange_rate,
            "reference": item.reference,
            "total": res.total,
            "description": res.description,
            "paid_from_bank_account_id": res.bank_account_id if not claim and res.paid else None,
            "source_id": source_id(item),
            **single,
        }
    )


def invoice_number(item: Item) -> str:
    """The sales invoice (or customer credit note) number: the reference, else from the item id.

    A corrected generation adds ``-R<generation>``: Nomi keeps a voided record's number taken.
    """
    prefix = "CN" if item.document_type == DocumentType.CREDIT_NOTE else "NC"
    number = (item.reference or "").strip() or f"{prefix}-{str(item.id)[:8].upper()}"
    return number if item.record_generation == 0 else f"{number}-R{item.record_generation}"


def sales_invoice_body(item: Item, res: Resolution, *, contact_id: str) -> SalesInvoiceCreate:
    """``POST /sales-invoices``: one line per resolved line (gross, category, tax rate, tax)."""
    assert item.date is not None
    assert res.total is not None
    return SalesInvoiceCreate(
        customer_id=contact_id,
        number=invoice_number(item),
        date=item.date,
        due_date=item.due_date,
        currency=_currency(item, res),
        exchange_rate=res.exchange_rate,
        reference=item.reference,
        lines=invoice_lines(item, res),
        total=res.total,
        source_id=source_id(item),
    )


def supplier_credit_note_body(
    item: Item, res: Resolution, *, contact_id: str, applies_to_id: str | None
) -> SupplierCreditNoteCreate:
    """``POST /supplier-credit-notes`` for a cost credit note (net-form lines, as an expense)."""
    assert item.date is not None
    assert res.total is not None
    return SupplierCreditNoteCreate(
        supplier_id=contact_id,
        date=item.date,
        currency=_currency(item, res),
        exchange_rate=res.exchange_rate,
        reference=item.reference,
        lines=expense_lines(res),
        total=res.total,
        source_id=source_id(item),
        applies_to_id=applies_to_id,
    )


def customer_credit_note_body(
    item: Item, res: Resolution, *, contact_id: str, applies_to_id: str | None
) -> CustomerCreditNoteCreate:
    """``POST /customer-credit-notes`` for a sales credit note (gross lines, as an invoice)."""
    assert item.date is not None
    assert res.total is not None
    return CustomerCreditNoteCreate(
        customer_id=contact_id,
        number=invoice_number(item),
        date=item.date,
        currency=_currency(item, res),
        exchange_rate=res.exchange_rate,
        reference=item.reference,
        lines=invoice_lines(item, res),
        total=res.total,
        source_id=source_id(item),
        applies_to_id=applies_to_id,
    )


def payment_body(item: Item, res: Resolution) -> PaymentCreate | None:
    """The payment of a paid sales invoice into its linked bank account, or None.

    Credit notes carry no payment: Nomi's credit note endpoints have no payments (NOMI_API.md).
    """
    if item.kind != ItemKind.SALES or not res.paid or res.bank_account_id is None:
        return None
    if item.document_type == DocumentType.CREDIT_NOTE:
        return None
    assert item.date is not None
    assert res.total is not None
    return PaymentCreate(bank_account_id=res.bank_account_id, date=item.date, amount=res.total)


def attachment_name(item: Item) -> str:
    """The file name of the item's document image in Nomi (stable, so a retry replaces)."""
    extension = _EXTENSIONS.get((item.image_content_type or "").lower(), "")
    return f"document-{item.id}{extension}"
