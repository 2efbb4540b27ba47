"""Typed models of every Nomi resource: what the client returns and what it sends.

Money is `Decimal` (sent as a string), dates are `date` (sent as ``YYYY-MM-DD``), timestamps are
timezone-aware UTC `datetime`. Read models ignore fields they do not know, so Nomi can add fields
without breaking us; write models refuse unknown fields, so a typo fails here and not at Nomi.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

_AS_TEXT = PlainSerializer(lambda v: format(v, "f"), return_type=str)
Money = Annotated[Decimal, _AS_TEXT]
#: An exchange rate: base-currency units per one document unit, > 0, at most 6 decimals.
Rate = Annotated[Decimal, Field(gt=0, decimal_places=6), _AS_TEXT]
Day = date  # field names `date` shadow the type inside classes
Status = Literal["ACTIVE", "ARCHIVED", "DELETED"]
#: ``status`` of a voided document (others: ACTIVE; sales invoices AUTHORISED or PAID).
VOIDED = "VOIDED"
#: Fields of read models that hold a date or a timestamp (``/Date(..)/`` is accepted there).
_DATE_FIELDS = ("updated_at", "created_at", "date", "due_date", "voided_at", "lock_date")


class _Read(BaseModel):
    """Base of models parsed from Nomi responses."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    # Only the date fields: a "*" validator was most of the cost of validating a page of records.
    @field_validator(*_DATE_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _xero_dates(cls, value: Any) -> Any:
        """Parse ``/Date(ms+0000)/`` defensively should Nomi ever emit it."""
        if isinstance(value, str) and value.startswith("/Date(") and value.endswith(")/"):
            millis = int(value[6:-2].split("+")[0].split("-")[0])
            return datetime.fromtimestamp(millis / 1000, tz=UTC)
        return value


class _Write(BaseModel):
    """Base of request bodies we send."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Contact(_Read):
    """A supplier or a customer."""

    id: str
    name: str
    status: Status = "ACTIVE"
    tax_number: str | None = None
    default_tax_rate_id: str | None = None
    default_category_id: str | None = None
    currency: str | None = None
    email: str | None = None
    source_id: str | None = None
    version: int | None = None
    updated_at: datetime


class Supplier(Contact):
    """A Nomi supplier."""


class Customer(Contact):
    """A Nomi customer."""


class Category(_Read):
    """An account of the chart of accounts."""

    id: str
    code: str | None = None
    name: str
    type: str
    status: Status = "ACTIVE"
    updated_at: datetime


class TaxRate(_Read):
    """A tax rate; ``rate`` is a percentage (20 means 20%)."""

    id: str
    code: str | None = None
    name: str
    rate: Decimal
    applies_to: Literal["PURCHASES", "SALES", "BOTH"] = "BOTH"
    status: Status = "ACTIVE"
    updated_at: datetime


class BankAccount(_Read):
    """A bank account expenses are paid from and payments go into."""

    id: str
    name: str
    currency: str | None = None
    masked_number: str | None = None
    status: Status = "ACTIVE"
    updated_at: datetime


class NomiUser(_Read):
    """A user of the organisation (an expense claimant)."""

    id: str
    name: str
    email: str | None = None


class Organisation(_Read):
    """One entry of ``/connections``: an organisation the token may act for."""

    id: str | None = None
    tenant_id: str = Field(validation_alias=AliasChoices("tenant_id", "tenantId"))
    tenant_name: str = Field(validation_alias=AliasChoices("tenant_name", "tenantName", "name"))
    tenant_type: str | None = Field(
        default=None, validation_alias=AliasChoices("tenant_type", "tenantType")
    )
    auth_event_id: str | None = Field(
        default=None, validation_alias=AliasChoices("auth_event_id", "authEventId")
    )


class OrganisationSettings(_Read):
    """``GET /organisation``: the connected organisation's base currency and lock date.

    Nothing dated on or before ``lock_date`` can be created or voided.
    """

    id: str
    name: str
    base_currency: str
    lock_date: Day | None = None
    vat_registered: bool = True
    updated_at: datetime


class TokenSet(BaseModel):
    """What the token endpoint issued; both tokens are secrets and print masked."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "Bearer"
    expires_at: datetime
    refresh_token_expires_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)


class ContactCreate(_Write):
    """Body of ``POST /suppliers`` and ``POST /customers``."""

    name: str
    tax_number: str | None = None
    email: str | None = None
    currency: str | None = None
    default_tax_rate_id: str | None = None
    default_category_id: str | None = None
    source_id: str | None = None


class ExpenseLine(_Write):
    """One line of an expense or a supplier credit note; ``net_amount`` excludes ``tax_amount``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    description: str = ""
    category_id: str
    tax_rate_id: str | None = None
    net_amount: Money
    tax_amount: Money = Decimal("0.00")


class ExpenseCreate(_Write):
    """Body of ``POST /expenses``: a company expense or an expense claim.

    Either the single form (``category_id`` with ``tax_rate_id``/``tax_amount``) or ``lines``
    (sending both, or neither, fails here). Nomi checks that the lines add up to ``total`` to the
    penny (``totals_mismatch``). ``exchange_rate`` only for a foreign ``currency`` (without it
    Nomi applies its daily rate).
    """

    kind: Literal["company", "claim"]
    user_id: str | None = None
    supplier_id: str | None = None
    date: Day
    currency: str
    exchange_rate: Rate | None = None
    reference: str | None = None
    total: Money
    tax_rate_id: str | None = None
    tax_amount: Money | None = None
    category_id: str | None = None
    lines: list[ExpenseLine] | None = None
    description: str | None = None
    paid_from_bank_account_id: str | None = None
    source_id: str

    @model_validator(mode="after")
    def _one_form(self) -> ExpenseCreate:
        single = (self.category_id, self.tax_rate_id, self.tax_amount)
        if self.lines is not None:
            if any(v is not None for v in single):
                raise ValueError("send lines or category_id/tax_rate_id/tax_amount, not both")
            if not self.lines:
                raise ValueError("lines, when sent, needs at least one line")
        elif self.category_id is None:
            raise ValueError("an expense needs category_id or lines")
        return self


class _Document(_Read):
    """Fields every Nomi document carries: currency, exchange rate, base total and status."""

    id: str
    currency: str
    exchange_rate: Decimal | None = None
    base_total: Decimal | None = None
    status: str | None = None
    voided_at: datetime | None = None
    source_id: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def voided(self) -> bool:
        """True once the document is voided (it keeps its ``source_id``)."""
        return self.status == VOIDED


class Expense(_Document):
    """An expense as Nomi stored it (``lines`` empty for the single form)."""

    kind: str
    user_id: str | None = None
    supplier_id: str | None = None
    date: Day
    reference: str | None = None
    total: Decimal
    tax_rate_id: str | None = None
    tax_amount: Decimal | None = None
    category_id: str | None = None
    lines: list[ExpenseLine] = Field(default_factory=list)
    description: str | None = None
    paid_from_bank_account_id: str | None = None


class InvoiceLine(_Write):
    """One line of a sales invoice; ``amount`` includes ``tax_amount`` (also parsed back)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    description: str = ""
    amount: Money
    category_id: str
    tax_rate_id: str | None = None
    tax_amount: Money = Decimal("0.00")


class SalesInvoiceCreate(_Write):
    """Body of ``POST /sales-invoices``."""

    customer_id: str
    number: str
    date: Day
    due_date: Day | None = None
    currency: str
    exchange_rate: Rate | None = None
    reference: str | None = None
    lines: list[InvoiceLine]
    total: Money
    source_id: str


class SalesInvoice(_Document):
    """A sales invoice as Nomi stored it (status AUTHORISED, PAID or VOIDED)."""

    customer_id: str | None = None
    number: str | None = None
    date: Day
    due_date: Day | None = None
    reference: str | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    total: Decimal
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    payments: list[Payment] = Field(default_factory=list)


class SupplierCreditNoteCreate(_Write):
    """Body of ``POST /supplier-credit-notes``; ``applies_to_id``: the expense it credits.

    ``total`` is the positive amount credited; lines as on an expense, adding up to it.
    """

    supplier_id: str
    date: Day
    currency: str
    exchange_rate: Rate | None = None
    reference: str | None = None
    lines: list[ExpenseLine] = Field(min_length=1)
    total: Money
    source_id: str
    applies_to_id: str | None = None


class CustomerCreditNoteCreate(_Write):
    """Body of ``POST /customer-credit-notes``; ``number`` is unique, ``applies_to_id`` the
    sales invoice it credits. Lines as on an invoice (``amount`` includes tax)."""

    customer_id: str
    number: str
    date: Day
    currency: str
    exchange_rate: Rate | None = None
    reference: str | None = None
    lines: list[InvoiceLine] = Field(min_length=1)
    total: Money
    source_id: str
    applies_to_id: str | None = None


class SupplierCreditNote(_Document):
    """A supplier credit note as Nomi stored it."""

    supplier_id: str | None = None
    date: Day
    reference: str | None = None
    lines: list[ExpenseLine] = Field(default_factory=list)
    total: Decimal
    tax_amount: Decimal | None = None
    applies_to_id: str | None = None


class CustomerCreditNote(_Document):
    """A customer credit note as Nomi stored it."""

    customer_id: str | None = None
    number: str | None = None
    date: Day
    reference: str | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    total: Decimal
    tax_amount: Decimal | None = None
    applies_to_id: str | None = None


class PaymentCreate(_Write):
    """Body of ``POST /sales-invoices/{id}/payments``."""

    bank_account_id: str
    date: Day
    amount: Money
    reference: str | None = None


class Payment(_Read):
    """A payment recorded against a sales invoice."""

    id: str
    invoice_id: str | None = None
    bank_account_id: str
    date: Day
    amount: Decimal
    reference: str | None = None


class Attachment(_Read):
    """A file attached to an expense or a sales invoice."""

    id: str | None = None
    filename: str = Field(validation_alias=AliasChoices("filename", "file_name", "name"))
    content_type: str | None = Field(
        default=None, validation_alias=AliasChoices("content_type", "mime_type")
    )
    size: int | None = Field(default=None, validation_alias=AliasChoices("size", "content_length"))
    sha256: str | None = None
    updated_at: datetime | None = None


for _document in (Expense, SalesInvoice, SupplierCreditNote, CustomerCreditNote):
    _document.model_rebuild()  # they name Attachment and Payment, defined after them
