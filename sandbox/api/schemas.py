"""The public shapes of the Nomi API (they make the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

MONEY = r"^-?\d{1,12}(\.\d{1,2})?$"
#: Base-currency units per one document unit: positive, at most 6 decimals.
RATE = r"^\d{1,9}(\.\d{1,6})?$"
CURRENCY = r"^[A-Z]{3}$"
Money = str
Status = Literal["ACTIVE", "ARCHIVED"]
RecordStatus = Literal["ACTIVE", "VOIDED"]
T = TypeVar("T")


class FieldProblem(BaseModel):
    """One reason a request was refused."""

    field: str | None = None
    code: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


class Pagination(BaseModel):
    """Where a page sits in a list."""

    page: int
    page_size: int
    page_count: int
    item_count: int


class Page(BaseModel, Generic[T]):
    """A page of a list, with the server's clock to bookmark."""

    items: list[T]
    pagination: Pagination
    server_time: str


class Record(BaseModel):
    """Fields every Nomi object carries."""

    id: str
    source_id: str | None = None
    updated_at: str
    version: int


class Contact(Record):
    """A supplier or a customer."""

    name: str
    status: Status
    tax_number: str | None = None
    email: str | None = None
    default_tax_rate_id: str | None = None
    default_category_id: str | None = None
    currency: str


class Category(Record):
    """An account of the chart of accounts."""

    code: str
    name: str
    type: Literal["EXPENSE", "INCOME"]
    status: Status


class TaxRate(Record):
    """A VAT rate."""

    code: str
    name: str
    rate: Money
    applies_to: Literal["PURCHASES", "SALES", "BOTH"]
    status: Status


class BankAccount(Record):
    """A bank account."""

    name: str
    currency: str
    masked_number: str
    status: Status


class User(Record):
    """A user of the organisation (an expense claimant)."""

    name: str
    email: str
    status: Status


class ContactCreate(BaseModel):
    """A new supplier or customer."""

    name: str = Field(min_length=1, max_length=255)
    tax_number: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=255)
    default_tax_rate_id: str | None = None
    default_category_id: str | None = None
    currency: str = Field(default="GBP", pattern=CURRENCY)
    source_id: str | None = Field(default=None, max_length=255)


class ContactUpdate(ContactCreate):
    """A change to a supplier or customer; ``version`` must be the current one."""

    status: Status = "ACTIVE"
    version: int


class Attachment(Record):
    """A file attached to an expense or a sales invoice."""

    filename: str
    content_type: str
    size: int
    sha256: str


class ExpenseLineIn(BaseModel):
    """A line of a new expense or supplier credit note; ``net_amount`` excludes ``tax_amount``."""

    description: str = Field(default="", max_length=4000)
    category_id: str
    tax_rate_id: str | None = None
    net_amount: Money = Field(pattern=MONEY)
    tax_amount: Money = Field(default="0.00", pattern=MONEY)


class ExpenseLine(BaseModel):
    """A line of an expense or a supplier credit note."""

    description: str
    category_id: str
    tax_rate_id: str | None = None
    net_amount: Money
    tax_amount: Money


class ExpenseCreate(BaseModel):
    """A new expense (a company purchase or an employee's claim).

    Either the single form (``category_id``, ``tax_rate_id``, ``tax_amount``) or ``lines``, never
    both; the lines' net and tax amounts add up to ``total`` to the penny.
    """

    kind: Literal["company", "claim"] = "company"
    user_id: str | None = None
    supplier_id: str | None = None
    date: dt.date
    currency: str = Field(default="GBP", pattern=CURRENCY)
    exchange_rate: str | None = Field(default=None, pattern=RATE)
    reference: str | None = Field(default=None, max_length=255)
    total: Money = Field(pattern=MONEY)
    tax_rate_id: str | None = None
    tax_amount: Money | None = Field(default=None, pattern=MONEY)
    category_id: str | None = None
    lines: list[ExpenseLineIn] | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    paid_from_bank_account_id: str | None = None
    source_id: str | None = Field(default=None, max_length=255)


class Foreign(BaseModel):
    """Currency fields every document carries: ``base_total`` = ``total`` x ``exchange_rate``."""

    currency: str
    exchange_rate: str
    base_total: Money


class Voidable(Record):
    """A document that can be voided (``status`` VOIDED, ``voided_at`` set)."""

    voided_at: str | None = None


class Expense(Voidable, Foreign):
    """An expense as Nomi keeps it (``lines`` empty for the single form)."""

    kind: Literal["company", "claim"]
    user_id: str | None = None
    supplier_id: str | None = None
    date: str
    reference: str | None = None
    total: Money
    tax_rate_id: str | None = None
    tax_amount: Money
    category_id: str | None = None
    lines: list[ExpenseLine] = []
    description: str | None = None
    paid_from_bank_account_id: str | None = None
    status: RecordStatus
    attachments: list[Attachment] = []
    created_at: str


class InvoiceLineIn(BaseModel):
    """A line of a new sales invoice; ``amount`` includes ``tax_amount``."""

    description: str = Field(default="", max_length=4000)
    amount: Money = Field(pattern=MONEY)
    category_id: str
    tax_rate_id: str | None = None
    tax_amount: Money = Field(default="0.00", pattern=MONEY)


class SalesInvoiceCreate(BaseModel):
    """A new sales invoice; ``total`` is the sum of the line amounts."""

    customer_id: str
    number: str = Field(min_length=1, max_length=64)
    date: dt.date
    due_date: dt.date | None = None
    currency: str = Field(default="GBP", pattern=CURRENCY)
    exchange_rate: str | None = Field(default=None, pattern=RATE)
    reference: str | None = Field(default=None, max_length=255)
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=200)
    total: Money = Field(pattern=MONEY)
    source_id: str | None = Field(default=None, max_length=255)


class PaymentCreate(BaseModel):
    """A payment received into a bank account against a sales invoice."""

    bank_account_id: str
    date: dt.date
    amount: Money = Field(pattern=MONEY)
    reference: str | None = Field(default=None, max_length=255)


class Payment(Record):
    """A payment of a sales invoice."""

    invoice_id: str
    bank_account_id: str
    date: str
    amount: Money
    reference: str | None = None


class InvoiceLine(BaseModel):
    """A line of a sales invoice."""

    description: str
    amount: Money
    category_id: str
    tax_rate_id: str | None = None
    tax_amount: Money


class SalesInvoice(Voidable, Foreign):
    """A sales invoice as Nomi keeps it (status AUTHORISED, PAID or VOIDED)."""

    customer_id: str
    number: str
    date: str
    due_date: str | None = None
    reference: str | None = None
    lines: list[InvoiceLine]
    total: Money
    amount_paid: Money
    amount_due: Money
    status: Literal["AUTHORISED", "PAID", "VOIDED"]
    payments: list[Payment] = []
    attachments: list[Attachment] = []
    created_at: str


class CreditNoteCreate(BaseModel):
    """Fields both kinds of credit note share; ``total`` is positive."""

    date: dt.date
    currency: str = Field(default="GBP", pattern=CURRENCY)
    exchange_rate: str | None = Field(default=None, pattern=RATE)
    total: Money = Field(pattern=MONEY)
    source_id: str | None = Field(default=None, max_length=255)


class SupplierCreditNoteCreate(CreditNoteCreate):
    """A new supplier credit note; ``applies_to_id`` is the expense it credits (optional)."""

    supplier_id: str
    reference: str | None = Field(default=None, max_length=255)
    lines: list[ExpenseLineIn] = Field(min_length=1, max_length=200)
    applies_to_id: str | None = None


class CustomerCreditNoteCreate(CreditNoteCreate):
    """A new customer credit note; ``number`` is unique; ``applies_to_id`` is the sales invoice."""

    customer_id: str
    number: str = Field(min_length=1, max_length=64)
    reference: str | None = Field(default=None, max_length=255)
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=200)
    applies_to_id: str | None = None


class SupplierCreditNote(Voidable, Foreign):
    """A supplier credit note as Nomi keeps it."""

    supplier_id: str
    date: str
    reference: str | None = None
    lines: list[ExpenseLine]
    total: Money
    tax_amount: Money
    applies_to_id: str | None = None
    status: RecordStatus
    attachments: list[Attachment] = []
    created_at: str


class CustomerCreditNote(Voidable, Foreign):
    """A customer credit note as Nomi keeps it."""

    customer_id: str
    number: str
    date: str
    reference: str | None = None
    lines: list[InvoiceLine]
    total: Money
    tax_amount: Money
    applies_to_id: str | None = None
    status: RecordStatus
    attachments: list[Attachment] = []
    created_at: str


class Organisation(BaseModel):
    """The organisation the request acts for: base currency, lock date, VAT registration."""

    id: str
    name: str
    base_currency: str
    lock_date: str | None = None
    vat_registered: bool
    updated_at: str


class Connection(BaseModel):
    """An organisation the access token may act for (Xero-style field names)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    tenantId: str
    tenantType: Literal["ORGANISATION"] = "ORGANISATION"
    tenantName: str
    authEventId: str
    createdDateUtc: str
    updatedDateUtc: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem responses of the given statuses."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        s: {
            "model": Problem,
            "description": "Problem",
            "content": {"application/problem+json": ref},
        }
        for s in statuses
    }
