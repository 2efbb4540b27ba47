"""The connector's tables (SQLModel): businesses, users, connections, mirrored Nomi lists, items.

The history tables are in ``connector.store.history_tables``, the shared base and column helpers
in ``connector.store.base``. Compare enumerated columns with the enums of
``connector.rules.vocabulary`` (``item.status == ItemStatus.READY``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from connector.rules.names import KEY_MAX, contact_key
from connector.rules.vocabulary import (
    ConnectionStatus,
    DocumentType,
    ItemStatus,
    RuleSource,
)
from connector.store.base import (
    ConnectorModel,
    created_field,
    id_field,
    updated_field,
    utcnow,
)

# --- accounts ---------------------------------------------------------------------------------


class Business(ConnectorModel, table=True):
    """A customer account (one per client business)."""

    __tablename__ = "businesses"

    id: uuid.UUID = id_field()
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=255)
    created_at: datetime = created_field()


class User(ConnectorModel, table=True):
    """A person who signs in to the connector."""

    __tablename__ = "users"

    id: uuid.UUID = id_field()
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=255)
    created_at: datetime = created_field()


class Membership(ConnectorModel, table=True):
    """A user's role in one business."""

    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("user_id", "business_id"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    role: str = Field(max_length=20)
    created_at: datetime = created_field()


# --- connection -------------------------------------------------------------------------------


class Connection(ConnectorModel, table=True):
    """The one connection of a business to a Nomi organisation (no secrets: a block has them)."""

    __tablename__ = "connections"

    id: uuid.UUID = id_field()
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
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()


class ConnectionSettings(ConnectorModel, table=True):
    """The editable, audited settings of one connection (tax-rate fields hold Nomi ids)."""

    __tablename__ = "connection_settings"

    id: uuid.UUID = id_field()
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
    updated_at: datetime = updated_field()


# --- reference lists mirrored from Nomi -------------------------------------------------------


class Organisation(ConnectorModel, table=True):
    """The Nomi organisation of a connection, mirrored with the lists (``GET /organisation``).

    At most one row per connection; no row means it was not mirrored yet (base currency and lock
    date unknown). A table of its own rather than columns on ``connections``: it is Nomi's data,
    written by the sync like the five lists (with Nomi's ``updated_at`` and when we last saw it),
    while the connection row belongs to consent, checks and disconnect.
    """

    __tablename__ = "organisations"

    id: uuid.UUID = id_field()
    connection_id: uuid.UUID = Field(foreign_key="connections.id", unique=True)
    nomi_id: str = Field(max_length=64)
    name: str = Field(max_length=255)
    base_currency: str = Field(max_length=3)
    lock_date: dt.date | None = None
    vat_registered: bool = True
    nomi_updated_at: datetime | None = None
    last_seen_at: datetime = Field(default_factory=utcnow, nullable=False)


class _ReferenceRow(ConnectorModel):
    """Columns every mirrored list row has."""

    id: uuid.UUID = id_field()
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

    id: uuid.UUID = id_field()
    connection_id: uuid.UUID = Field(foreign_key="connections.id")
    list_name: str = Field(max_length=32)
    bookmark: datetime | None = None
    updated_at: datetime = updated_field()


# --- our own configuration --------------------------------------------------------------------


class PaymentMethod(ConnectorModel, table=True):
    """A payment method of a business, optionally linked to a Nomi bank account."""

    __tablename__ = "payment_methods"
    __table_args__ = (sa.UniqueConstraint("business_id", "name"),)

    id: uuid.UUID = id_field()
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    name: str = Field(max_length=255)
    bank_account_nomi_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_field()


class ContactRule(ConnectorModel, table=True):
    """A supplier or customer rule, matched by normalised name (Nomi ids for category/tax rate)."""

    __tablename__ = "contact_rules"
    __table_args__ = (
        sa.UniqueConstraint(
            "connection_id", "kind", "name_normalised", "source", name="uq_contact_rule"
        ),
    )

    id: uuid.UUID = id_field()
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
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()


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
        # the two possible-duplicate look-ups of assessment (migration 0008, docs/rules.md)
        sa.Index("ix_items_duplicate_amounts", "business_id", "supplier_key", "date", "total"),
        sa.Index("ix_items_duplicate_reference", "business_id", "supplier_key", "reference"),
    )

    id: uuid.UUID = id_field()
    business_id: uuid.UUID = Field(foreign_key="businesses.id")
    kind: str = Field(max_length=20)
    status: str = Field(default=ItemStatus.REVIEW, max_length=20)
    review_reasons: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    external_id: str = Field(max_length=255)
    contact_name: str | None = Field(default=None, max_length=255)
    #: ``contact_key(contact_name)``: intake stages it, the ORM and assessment keep it current.
    supplier_key: str | None = Field(default=None, max_length=KEY_MAX)
    reference: str | None = Field(default=None, max_length=255)
    date: dt.date | None = None
    due_date: dt.date | None = None
    document_type: str = Field(
        default=DocumentType.INVOICE,
        max_length=20,
        sa_column_kwargs={"server_default": DocumentType.INVOICE.value},
    )
    credits_external_id: str | None = Field(default=None, max_length=255)
    currency: str = Field(default="GBP", max_length=3)
    #: Base-currency units per one unit of ``currency``, as the document gives it (else Nomi's).
    exchange_rate: Decimal | None = Field(default=None, max_digits=15, decimal_places=6)
    total: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    tax_amount: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    #: The document's lines as imported (``connector.items.lines``): ``[]`` for a one-line item.
    lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"}
    )
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
    #: What each line resolved to (assessment writes it with the rest; ``[]`` without lines).
    resolved_lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"}
    )
    publish_generation: int = Field(default=1, nullable=False)
    claimed_by_run: uuid.UUID | None = None
    claimed_at: datetime | None = None
    nomi_record_id: str | None = Field(default=None, max_length=64)
    nomi_record_type: str | None = Field(default=None, max_length=20)
    #: The generation of the record in ``nomi_record_id``: 0 first, +1 per correction (0009).
    record_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: Nomi records of earlier generations, voided, oldest first (``<record type>:<id>``).
    voided_record_ids: list[str] = Field(
        default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"}
    )
    #: What a claimed correction or archive applies once the old record is voided (else None).
    pending_correction: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    image_published: bool = False
    image_error: str | None = None
    payment_recorded: bool = False
    last_error_code: str | None = Field(default=None, max_length=64)
    last_error_message: str | None = None
    ready_at: datetime | None = None
    published_at: datetime | None = None
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()


@sa.event.listens_for(Item, "before_insert")
@sa.event.listens_for(Item, "before_update")
def _keep_supplier_key(_mapper: Any, _connection: Any, target: Item) -> None:
    """An item written through the ORM stores the matching key of its contact name."""
    target.supplier_key = contact_key(target.contact_name)


class DuplicateRelease(ConnectorModel, table=True):
    """An admin's "not a duplicate": the later item of a pair is never held for the earlier one.

    ``item_id`` is the item that was held, ``other_item_id`` the item it was held as a possible
    duplicate of (audited as ``item.release``; docs/rules.md, "Possible duplicates").
    """

    __tablename__ = "duplicate_releases"
    __table_args__ = (sa.UniqueConstraint("item_id", "other_item_id"),)

    id: uuid.UUID = id_field()
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    item_id: uuid.UUID = Field(foreign_key="items.id")
    other_item_id: uuid.UUID = Field(foreign_key="items.id")
    released_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = created_field()
