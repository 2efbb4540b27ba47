"""The history tables (append-only): publish runs and attempts, sync runs, connection checks, audit.

Rows are inserted once (see ``connector.history.records``) and never updated.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from connector.store.base import ConnectorModel, id_field, utcnow


class PublishRun(ConnectorModel, table=True):
    """One publish run, inserted once when it finishes (its id is the run id used for claims)."""

    __tablename__ = "publish_runs"

    id: uuid.UUID = id_field()
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

    id: uuid.UUID = id_field()
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
    # The item's document (migration 0007; empty on older rows: "not recorded", never 0).
    document_type: str | None = Field(default=None, max_length=20)
    currency: str | None = Field(default=None, max_length=3)
    total: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    base_currency: str | None = Field(default=None, max_length=3)
    #: ``total`` in ``base_currency`` (empty when it could not be known; docs/history.md).
    base_total: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)


class SyncRun(ConnectorModel, table=True):
    """One sync of one reference list of one connection."""

    __tablename__ = "sync_runs"

    id: uuid.UUID = id_field()
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
    #: What changed (the organisation's lock date or base currency; migration 0007), else empty.
    detail: str | None = None


class ConnectionCheck(ConnectorModel, table=True):
    """One health check of a connection."""

    __tablename__ = "connection_checks"

    id: uuid.UUID = id_field()
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

    id: uuid.UUID = id_field()
    at: datetime = Field(default_factory=utcnow, nullable=False, index=True)
    business_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    action: str = Field(max_length=64)
    allowed: bool
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
