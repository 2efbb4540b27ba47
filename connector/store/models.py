"""The connector's tables (SQLModel): businesses, connections, mirrored Nomi lists, items, history.

Conventions: UUID primary keys; timestamps are timezone-aware UTC (SQLModel's ``UTCDateTime`` stores
them as UTC and always returns aware values, also on SQLite); money is ``Numeric(18, 2)`` read as
``Decimal``; lists and maps are ``sa.JSON``. Enumerations are stored as short strings; the allowed
values are the ``StrEnum`` classes below (compare with them:
``item.status == ItemStatus.READY``).

History tables (``PublishRun``, ``PublishAttempt``, ``SyncRun``, ``ConnectionCheck``, ``AuditLog``)
are append-only: rows are inserted once (see ``connector.history.records``) and never updated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ConnectorModel(
    SQLModel, registry=registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))
):
    """Base of the connector's tables: its own metadata, apart from any other SQLModel tables."""


metadata = ConnectorModel.metadata


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


MAX_ERROR_CHARS = 500
"""Characters of an error message kept in a row (a connection's ``last_error``, a sync run's
``error``, a connection check's detail): enough to read, never a whole response body."""


def short_error(text: str) -> str:
    """``text`` cut to what a row keeps (``MAX_ERROR_CHARS``)."""
    return text[:MAX_ERROR_CHARS]


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (typed: SQLModel does not declare ``__table__``)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


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


class ItemStatus(StrEnum):
    """Lifecycle: review -> ready -> publishing (claimed) -> published; archived never publishes."""

    REVIEW = "review"
    READY = "ready"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ContactKind(StrEnum):
    """Which contact list a rule applies to."""

    SUPPLIER = "supplier"
    CUSTOMER = "customer"


class RuleSource(StrEnum):
    """Who made a contact rule: a user, or imported from Nomi's supplier defaults."""

    USER = "user"
    NOMI = "nomi"


class NomiRecordType(StrEnum):
    """The Nomi record an item became."""

    EXPENSE = "expense"
    SALES_INVOICE = "sales_invoice"


class AttemptStep(StrEnum):
    """The Nomi call a publish attempt made."""

    CONTACT = "contact"
    EXPENSE = "expense"
    SALES_INVOICE = "sales_invoice"
    ATTACHMENT = "attachment"
    PAYMENT = "payment"
    LOOKUP = "lookup"


class AttemptOutcome(StrEnum):
    """How a publish attempt ended."""

    PUBLISHED = "published"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"
    CONNECTION_LOST = "connection_lost"
    HELD = "held"
    RECOVERED = "recovered"


class ListName(StrEnum):
    """The five reference lists mirrored from Nomi."""

    SUPPLIERS = "suppliers"
    CUSTOMERS = "customers"
    CATEGORIES = "categories"
    TAX_RATES = "tax_rates"
    BANK_ACCOUNTS = "bank_accounts"


def _id() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def _created() -> Any:
    return Field(default_factory=utcnow, nullable=False)


def _updated() -> Any:
    return Field(default_factory=utcnow, nullable=False, sa_column_kwargs={"onupdate": utcnow})


# --- accounts ---------------------------------------------------------------------------------


class Business(ConnectorModel, table=True):
    """A customer account (one per client business)."""

    __tablename__ = "businesses"

    id: uuid.UUID = _id()
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=255)
    created_at: datetime = _created()


class User(ConnectorModel, table=True):
    """A person who signs in to the connector."""

    __tablename__ = "users"

    id: uuid.UUID = _id()
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=255)
    created_at: datetime = _created()


class Membership(ConnectorModel, table=True):
    """A user's role in one business."""

    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("user_id", "business_id"),)

    id: uuid.UUID = _id()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    role: str = Field(max_length=20)
    created_at: datetime = _created()


# --- connection -------------------------------------------------------------------------------


class Connection(ConnectorModel, table=True):
    """The one connection of a business to a Nomi organisation (no secrets: a block has them)."""

    __tablename__ = "connections"

    id: uuid.UUID = _id()
    business_id: uuid.UUID = Field(foreign_key="businesses.id", unique=True)
    nomi_tenant_id: str | None = Field(default=None, max_length=64, index=True)
    organisation_name: str | None = Field(default=None, max_length=255)
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    status: str = Field(default=ConnectionStatus.PENDING, max_length=20)
    connected_at: datetime | None = None
    last_verified_at: datetime | None = None
    last_synced_at: datetime | None = None
    consent_expires_at: datetime | None = None
    credentials_block_name: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class ConnectionSettings(ConnectorModel, table=True):
    """The editable, audited settings of one connection (tax-rate fields hold Nomi ids)."""

    __tablename__ = "connection_settings"

    id: uuid.UUID = _id()
    connection_id: uuid.UUID = Field(foreign_key="connections.id", unique=True)
    warn_new_supplier: bool = True
    publish_images_with_expense_claims: bool = True
    use_tax_list: bool = True
    use_supplier_tax_rates: bool = False
    default_tax_costs: str | None = Field(default=None, max_length=64)
    default_zero_tax_code_costs: str | None = Field(default=None, max_length=64)
    default_tax_sales: str | None = Field(default=None, max_length=64)
    default_zero_tax_code_sales: str | None = Field(default=None, max_length=64)
    auto_publish: bool = False
    updated_at: datetime = _updated()


# --- reference lists mirrored from Nomi -------------------------------------------------------


class _ReferenceRow(ConnectorModel):
    """Columns every mirrored list row has."""

    id: uuid.UUID = _id()
    # No index of its own: the unique (connection_id, nomi_id) index of every list table leads
    # with it (a second one only cost every synced row another B-tree write; migration 0004).
    connection_id: uuid.UUID = Field(foreign_key="connections.id")
    nomi_id: str = Field(max_length=64)
    name: str = Field(max_length=255)
    status: str = Field(default="ACTIVE", max_length=20)
    nomi_updated_at: datetime | None = None
    last_seen_at: datetime = Field(default_factory=utcnow, nullable=False)


class _ContactRow(_ReferenceRow):
    """Columns shared by suppliers and customers."""

    name_normalised: str = Field(max_length=255)
    tax_number: str | None = Field(default=None, max_length=64)
    default_tax_rate_id: str | None = Field(default=None, max_length=64)
    default_category_id: str | None = Field(default=None, max_length=64)
    currency: str | None = Field(default=None, max_length=3)


class Supplier(_ContactRow, table=True):
    """A Nomi supplier."""

    __tablename__ = "suppliers"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "nomi_id"),
        sa.Index("ix_suppliers_name_normalised", "connection_id", "name_normalised"),
    )


class Customer(_ContactRow, table=True):
    """A Nomi customer."""

    __tablename__ = "customers"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "nomi_id"),
        sa.Index("ix_customers_name_normalised", "connection_id", "name_normalised"),
    )


class Category(_ReferenceRow, table=True):
    """A Nomi chart-of-accounts category (``type`` EXPENSE or INCOME)."""

    __tablename__ = "categories"
    __table_args__ = (sa.UniqueConstraint("connection_id", "nomi_id"),)

    code: str | None = Field(default=None, max_length=32)
    type: str = Field(max_length=20)


class TaxRate(_ReferenceRow, table=True):
    """A Nomi tax rate (``rate`` in percent; ``applies_to`` PURCHASES, SALES or BOTH)."""

    __tablename__ = "tax_rates"
    __table_args__ = (sa.UniqueConstraint("connection_id", "nomi_id"),)

    code: str | None = Field(default=None, max_length=32)
    rate: Decimal = Field(max_digits=9, decimal_places=4)
    applies_to: str = Field(max_length=20)


class BankAccount(_ReferenceRow, table=True):
    """A Nomi bank account."""

    __tablename__ = "bank_accounts"
    __table_args__ = (sa.UniqueConstraint("connection_id", "nomi_id"),)

    currency: str | None = Field(default=None, max_length=3)
    masked_number: str | None = Field(default=None, max_length=64)


class SyncBookmark(ConnectorModel, table=True):
    """The one mutable pointer per (connection, list): Nomi's ``server_time`` of the last sync."""

    __tablename__ = "sync_bookmarks"
    __table_args__ = (sa.UniqueConstraint("connection_id", "list_name"),)

    id: uuid.UUID = _id()
    connection_id: uuid.UUID = Field(foreign_key="connections.id")
    list_name: str = Field(max_length=32)
    bookmark: datetime | None = None
    updated_at: datetime = _updated()


# --- our own configuration --------------------------------------------------------------------


class PaymentMethod(ConnectorModel, table=True):
    """A payment method of a business, optionally linked to a Nomi bank account."""

    __tablename__ = "payment_methods"
    __table_args__ = (sa.UniqueConstraint("business_id", "name"),)

    id: uuid.UUID = _id()
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    name: str = Field(max_length=255)
    bank_account_nomi_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _created()


class ContactRule(ConnectorModel, table=True):
    """A supplier or customer rule, matched by normalised name (Nomi ids for category/tax rate)."""

    __tablename__ = "contact_rules"
    __table_args__ = (
        sa.UniqueConstraint(
            "connection_id", "kind", "name_normalised", "source", name="uq_contact_rule"
        ),
    )

    id: uuid.UUID = _id()
    connection_id: uuid.UUID = Field(foreign_key="connections.id", index=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=255)
    name_normalised: str = Field(max_length=255)
    category_nomi_id: str | None = Field(default=None, max_length=64)
    tax_rate_nomi_id: str | None = Field(default=None, max_length=64)
    payment_method_id: uuid.UUID | None = Field(default=None, foreign_key="payment_methods.id")
    description: str | None = None
    paid: bool | None = None
    auto_publish: bool | None = None
    source: str = Field(default=RuleSource.USER, max_length=20)
    created_at: datetime = _created()
    updated_at: datetime = _updated()


# --- items ------------------------------------------------------------------------------------


class Item(ConnectorModel, table=True):
    """A document to publish: a cost, a sales item or an expense claim, and its outbox state."""

    __tablename__ = "items"
    __table_args__ = (
        sa.UniqueConstraint("business_id", "external_id"),
        sa.Index("ix_items_business_status", "business_id", "status"),
        sa.Index("ix_items_status_claimed_at", "status", "claimed_at"),
        # covering index for the history report's latency join (migration 0003)
        sa.Index("ix_items_id_ready_at", "id", "ready_at"),
    )

    id: uuid.UUID = _id()
    business_id: uuid.UUID = Field(foreign_key="businesses.id")
    kind: str = Field(max_length=20)
    status: str = Field(default=ItemStatus.REVIEW, max_length=20)
    review_reasons: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    external_id: str = Field(max_length=255)
    contact_name: str | None = Field(default=None, max_length=255)
    reference: str | None = Field(default=None, max_length=255)
    date: dt.date | None = None
    due_date: dt.date | None = None
    currency: str = Field(default="GBP", max_length=3)
    total: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    tax_amount: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    description: str | None = None
    category_edit: str | None = Field(default=None, max_length=64)
    tax_rate_edit: str | None = Field(default=None, max_length=64)
    paid: bool = False
    payment_method_id: uuid.UUID | None = Field(default=None, foreign_key="payment_methods.id")
    claimant_email: str | None = Field(default=None, max_length=320)
    claimant_nomi_user_id: str | None = Field(default=None, max_length=64)
    image_path: str | None = None
    image_content_type: str | None = Field(default=None, max_length=64)
    image_sha256: str | None = Field(default=None, max_length=64)
    contact_confirmed: bool = False
    contact_mapped_nomi_id: str | None = Field(default=None, max_length=64)
    resolved_contact_nomi_id: str | None = Field(default=None, max_length=64)
    resolved_category_nomi_id: str | None = Field(default=None, max_length=64)
    resolved_tax_rate_nomi_id: str | None = Field(default=None, max_length=64)
    resolved_net: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    resolved_tax: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    resolved_bank_account_nomi_id: str | None = Field(default=None, max_length=64)
    resolved_description: str | None = None
    resolved_sources: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    publish_generation: int = Field(default=1, nullable=False)
    claimed_by_run: uuid.UUID | None = None
    claimed_at: datetime | None = None
    nomi_record_id: str | None = Field(default=None, max_length=64)
    nomi_record_type: str | None = Field(default=None, max_length=20)
    image_published: bool = False
    image_error: str | None = None
    payment_recorded: bool = False
    last_error_code: str | None = Field(default=None, max_length=64)
    last_error_message: str | None = None
    ready_at: datetime | None = None
    published_at: datetime | None = None
    created_at: datetime = _created()
    updated_at: datetime = _updated()


# --- history (append-only) --------------------------------------------------------------------


class PublishRun(ConnectorModel, table=True):
    """One publish run, inserted once when it finishes (its id is the run id used for claims)."""

    __tablename__ = "publish_runs"

    id: uuid.UUID = _id()
    flow_run_id: uuid.UUID | None = Field(default=None, index=True)
    trigger: str = Field(max_length=32)
    business_id: uuid.UUID | None = Field(default=None, foreign_key="businesses.id", index=True)
    started_at: datetime = Field(default_factory=utcnow, nullable=False, index=True)
    finished_at: datetime | None = None
    claimed: int = 0
    published: int = 0
    failed: int = 0
    held: int = 0
    skipped: int = 0


class PublishAttempt(ConnectorModel, table=True):
    """One call made while publishing one item (``run_id``: the run's id, no FK, see PublishRun)."""

    __tablename__ = "publish_attempts"
    __table_args__ = (sa.Index("ix_publish_attempts_business_at", "business_id", "at"),)

    id: uuid.UUID = _id()
    run_id: uuid.UUID = Field(index=True)
    item_id: uuid.UUID = Field(foreign_key="items.id", index=True)
    business_id: uuid.UUID = Field(foreign_key="businesses.id")
    attempt_no: int = 1
    step: str = Field(max_length=20)
    idempotency_key: str | None = Field(default=None, max_length=128)
    outcome: str = Field(max_length=20)
    http_status: int | None = None
    nomi_record_id: str | None = Field(default=None, max_length=64)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    latency_ms: int | None = None
    at: datetime = Field(default_factory=utcnow, nullable=False, index=True)


class SyncRun(ConnectorModel, table=True):
    """One sync of one reference list of one connection."""

    __tablename__ = "sync_runs"

    id: uuid.UUID = _id()
    connection_id: uuid.UUID = Field(foreign_key="connections.id", index=True)
    list_name: str = Field(max_length=32)
    mode: str = Field(max_length=20)
    started_at: datetime = Field(default_factory=utcnow, nullable=False, index=True)
    finished_at: datetime | None = None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    archived: int = 0
    bookmark_before: datetime | None = None
    bookmark_after: datetime | None = None
    status: str = Field(max_length=20)
    error: str | None = None


class ConnectionCheck(ConnectorModel, table=True):
    """One health check of a connection."""

    __tablename__ = "connection_checks"

    id: uuid.UUID = _id()
    connection_id: uuid.UUID = Field(foreign_key="connections.id", index=True)
    at: datetime = Field(default_factory=utcnow, nullable=False, index=True)
    ok: bool
    token_ok: bool | None = None
    tenant_ok: bool | None = None
    scopes_ok: bool | None = None
    list_ok: bool | None = None
    days_to_consent_expiry: int | None = None
    detail: str | None = None


class AuditLog(ConnectorModel, table=True):
    """An audited action, allowed or refused (plain ids, no FKs: a refusal is always kept)."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_business_at", "business_id", "at"),)

    id: uuid.UUID = _id()
    at: datetime = Field(default_factory=utcnow, nullable=False, index=True)
    business_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    action: str = Field(max_length=64)
    allowed: bool
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
