"""The mirrored Nomi organisation of one connection: its base currency and lock date, and changes.

`sync_organisation` reads ``GET /organisation``, writes the connection's ``organisations`` row
(one upsert), appends a ``SyncRun`` row (list ``organisation``) and moves its bookmark, all in one
transaction. It reports what changed since the last sync (`OrganisationReport.changes`): a new
lock date or base currency means items already assessed may have to be assessed again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.history.records import record_sync_run
from connector.store.base import short_error, table_of, utcnow
from connector.store.db import session as db_session
from connector.store.models import Organisation
from connector.sync.bookmarks import set_bookmark
from connector.sync.lists import SyncMode, SyncStatus
from connector.sync.writer import insert_for
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError
from nomi.models import OrganisationSettings

#: The name the organisation's ``SyncRun`` rows and bookmark carry (beside the five lists).
ORGANISATION = "organisation"
#: The settings whose change may change how items are assessed (the lock date, the currency).
WATCHED = ("lock_date", "base_currency")


@dataclass(frozen=True)
class OrganisationChange:
    """One watched setting that changed between two syncs (``None``: not set)."""

    setting: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        words = self.setting.replace("_", " ")
        return f"{words} {self.before or 'none'} -> {self.after or 'none'}"


@dataclass
class OrganisationReport:
    """What one sync of the organisation did (also stored as a ``SyncRun`` row)."""

    connection_id: uuid.UUID
    mode: str
    status: SyncStatus = SyncStatus.OK
    inserted: int = 0
    updated: int = 0
    base_currency: str | None = None
    lock_date: date | None = None
    changes: list[OrganisationChange] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    error: str | None = None

    @property
    def organisation_changed(self) -> bool:
        """Whether the lock date or base currency changed since the last sync (not the first)."""
        return bool(self.changes)

    @property
    def detail(self) -> str | None:
        """The changes in words (``lock date 2025-12-31 -> 2026-03-31``), None when none."""
        return "; ".join(str(c) for c in self.changes) or None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary shaped like a list's (tasks, artifacts and events)."""
        return {
            "list": ORGANISATION,
            "mode": self.mode,
            "status": self.status.value,
            "fetched": 1 if self.status == SyncStatus.OK else 0,
            "inserted": self.inserted,
            "updated": self.updated,
            "archived": 0,
            "base_currency": self.base_currency,
            "lock_date": self.lock_date.isoformat() if self.lock_date else None,
            "organisation_changed": self.organisation_changed,
            "changes": [vars(c) for c in self.changes],
            "error": self.error,
        }


def sync_organisation(
    engine: Engine, client: NomiClient, *, connection_id: uuid.UUID, mode: SyncMode = "incremental"
) -> OrganisationReport:
    """Mirror the connection's Nomi organisation (name, base currency, lock date, VAT).

    Incremental and full syncs do the same (one small record); ``mode`` is recorded.

    Args:
        engine: The connector database.
        client: A client acting for the connection's organisation.
        connection_id: The connection whose row to write.
        mode: The sync's mode, as recorded on the ``SyncRun`` row.

    Returns:
        The report; its ``changes`` name the watched settings that changed (none the first time).

    Raises:
        NomiError: Nomi failed (``ConnectionLostError`` when a reconnect is needed); a ``SyncRun``
            row with status ``failed``/``connection_lost`` is committed and the row is kept.
    """
    report = OrganisationReport(connection_id=connection_id, mode=mode)
    try:
        nomi = client.get_organisation()
    except Exception as exc:
        lost = isinstance(exc, ConnectionLostError)
        report.status = SyncStatus.CONNECTION_LOST if lost else SyncStatus.FAILED
        report.error = short_error(f"{type(exc).__name__}: {exc}")
        with db_session(engine) as session:
            _record(session, report)
        raise
    report.base_currency, report.lock_date = nomi.base_currency, nomi.lock_date
    with db_session(engine, write=True) as session:
        before = mirrored(session, connection_id)
        values = _values(nomi)
        if before is None:
            report.inserted = 1
        else:
            report.changes = _changes(before, values)
            report.updated = int(any(before[k] != v for k, v in values.items()))
        _upsert(session, connection_id, values | {"last_seen_at": report.started_at})
        set_bookmark(
            session, connection_id=connection_id, list_name=ORGANISATION, bookmark=report.started_at
        )
        _record(session, report)
    return report


def mirrored(session: Session, connection_id: uuid.UUID) -> dict[str, Any] | None:
    """The connection's mirrored organisation as column values, or None (never synced)."""
    table = table_of(Organisation)
    row = (
        session.connection()
        .execute(sa.select(table).where(table.c.connection_id == connection_id))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def _values(nomi: OrganisationSettings) -> dict[str, Any]:
    """The row's columns Nomi's answer sets."""
    return {
        "nomi_id": nomi.id,
        "name": nomi.name,
        "base_currency": nomi.base_currency,
        "lock_date": nomi.lock_date,
        "vat_registered": nomi.vat_registered,
        "nomi_updated_at": nomi.updated_at,
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[OrganisationChange]:
    """The watched settings whose value differs, in `WATCHED` order."""

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return [
        OrganisationChange(name, text(before[name]), text(after[name]))
        for name in WATCHED
        if before[name] != after[name]
    ]


def _upsert(session: Session, connection_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Insert or update the connection's row (one statement: two syncs cannot collide)."""
    table = table_of(Organisation)
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.connection_id], set_=values)
    session.connection().execute(
        stmt, {"id": uuid.uuid4(), "connection_id": connection_id, **values}
    )


def _record(session: Session, report: OrganisationReport) -> None:
    """Append the ``SyncRun`` row of this sync (``detail``: what changed)."""
    record_sync_run(
        session,
        connection_id=report.connection_id,
        list_name=ORGANISATION,
        mode=report.mode,
        started_at=report.started_at,
        finished_at=utcnow(),
        fetched=1 if report.status == SyncStatus.OK else 0,
        inserted=report.inserted,
        updated=report.updated,
        status=report.status.value,
        error=report.error,
        detail=report.detail,
    )
