"""The connector's words: every enum and fixed name the other packages share, defined once.

Stored as strings in the database (the tables in ``connector.store.models`` use these enums), used
in idempotency keys and history, and read by the rules engine.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role in a business (an accountant acting for a client counts as admin there)."""

    ADMIN = "admin"
    STANDARD = "standard"
    ACCOUNTANT = "accountant"


class ConnectionStatus(StrEnum):
    """Lifecycle of a business's connection to Nomi."""

    PENDING = "pending"
    CONNECTED = "connected"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISCONNECTED = "disconnected"


class ItemKind(StrEnum):
    """Item kind: cost and expense_claim become Nomi Expenses, sales become Sales invoices."""

    COST = "cost"
    SALES = "sales"
    EXPENSE_CLAIM = "expense_claim"


class DocumentType(StrEnum):
    """What the document of an item is: an invoice or receipt, or a credit note (a credit).

    Invoices and receipts publish alike (cost items and claims as Expenses, sales items as Sales
    invoices); a credit note of a cost item becomes a supplier credit note, of a sales item a
    customer credit note. Expense claims cannot be credit notes.
    """

    INVOICE = "invoice"
    RECEIPT = "receipt"
    CREDIT_NOTE = "credit_note"


class ItemStatus(StrEnum):
    """Lifecycle: review -> ready -> publishing (claimed) -> published; archived never publishes."""

    REVIEW = "review"
    READY = "ready"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ContactKind(StrEnum):
    """Which contact list a name belongs to: customers for sales items, suppliers otherwise."""

    SUPPLIER = "supplier"
    CUSTOMER = "customer"


class RuleSource(StrEnum):
    """Who made a contact rule: a user, or imported from Nomi's supplier defaults."""

    USER = "user"
    NOMI = "nomi"


class AttemptStep(StrEnum):
    """A step of a publish: the Nomi call an attempt made (also the idempotency-key step name).

    ``EXPENSE``, ``SALES_INVOICE``, ``SUPPLIER_CREDIT_NOTE`` and ``CUSTOMER_CREDIT_NOTE`` are also
    the record types an item becomes in Nomi (``record_step``).
    """

    CONTACT = "contact"
    EXPENSE = "expense"
    SALES_INVOICE = "sales_invoice"
    SUPPLIER_CREDIT_NOTE = "supplier_credit_note"
    CUSTOMER_CREDIT_NOTE = "customer_credit_note"
    ATTACHMENT = "attachment"
    PAYMENT = "payment"
    LOOKUP = "lookup"
    RESOLVE = "resolve"
    CLAIMANT = "claimant"
    VOID = "void"


class AttemptOutcome(StrEnum):
    """How a publish attempt ended."""

    PUBLISHED = "published"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"
    CONNECTION_LOST = "connection_lost"
    HELD = "held"
    RECOVERED = "recovered"


class RunTrigger(StrEnum):
    """What started a publish run (``publish_runs.trigger``), read from Prefect's runtime.

    Rows written before December 2026 also hold ``manual`` (publish-items and custom runs).
    """

    SCHEDULE = "schedule"
    AUTOMATION = "automation"
    PERSON = "person"
    RECONNECT = "reconnect"


class ListName(StrEnum):
    """The five reference lists mirrored from Nomi."""

    SUPPLIERS = "suppliers"
    CUSTOMERS = "customers"
    CATEGORIES = "categories"
    TAX_RATES = "tax_rates"
    BANK_ACCOUNTS = "bank_accounts"


class ErrorCode(StrEnum):
    """``last_error_code`` of items given back unpublished for a reason that passes by itself.

    A rejection stores Nomi's own code instead (``VALIDATION_ERROR``, ``LOCK_DATE``, ...).
    """

    CONNECTION_EXPIRED = "connection_expired"
    DAILY_LIMIT = "daily_limit"
    TRANSIENT = "transient"
    OUTCOME_UNKNOWN = "outcome_unknown"
    INTERNAL_ERROR = "internal_error"


#: Codes that do not hold an item back from auto-publish: they pass by themselves.
RETRYABLE_ERROR_CODES = frozenset(ErrorCode)

#: Item kinds the rules engine accepts.
ITEM_KINDS = frozenset(ItemKind)

#: Document types the rules engine accepts.
DOCUMENT_TYPES = frozenset(DocumentType)

#: Item kinds that may be credit notes (a claim is reimbursed, never credited).
CREDITABLE_KINDS = frozenset({ItemKind.COST, ItemKind.SALES})


def contact_kind(kind: str) -> ContactKind:
    """The contact list of an item kind: customers for sales items, suppliers otherwise."""
    return ContactKind.CUSTOMER if kind == ItemKind.SALES else ContactKind.SUPPLIER


class HoldCode(StrEnum):
    """The ``error_code`` of a publish attempt that held an item in review for a known reason."""

    #: A paid item's bank account is neither in the item's currency nor the base currency.
    BANK_CURRENCY = "bank_currency_mismatch"
    #: A credit note names an item of the business that is not published yet.
    CREDITED_NOT_PUBLISHED = "credited_item_not_published"


def record_step(kind: str, document_type: str = DocumentType.INVOICE) -> AttemptStep:
    """The step (and Nomi record type) that creates the record of an item of ``kind``.

    A credit note of a sales item becomes a customer credit note, of a cost item a supplier one;
    every other document an expense (costs and claims) or a sales invoice (sales).
    """
    sales = kind == ItemKind.SALES
    if document_type == DocumentType.CREDIT_NOTE:
        return AttemptStep.CUSTOMER_CREDIT_NOTE if sales else AttemptStep.SUPPLIER_CREDIT_NOTE
    return AttemptStep.SALES_INVOICE if sales else AttemptStep.EXPENSE
