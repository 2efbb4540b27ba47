"""Reference-data sync of one list of one connection: page from Nomi, write, move the bookmark.

`sync_list` runs an incremental or full sync of one list (see docs/sync.md: streaming, group
commits, drift passes, archiving in full passes) and appends a ``SyncRun`` row, successful or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.history.records import record_sync_run
from connector.store.base import short_error, utcnow
from connector.store.db import session as db_session
from connector.sync.bookmarks import get_bookmark, set_bookmark
from connector.sync.catalog import LISTS, ListSpec, list_specs
from connector.sync.writer import ARCHIVED, PageWriter
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError

SyncMode = Literal["incremental", "full"]
PAGE_SIZE = 1000
#: Records written per transaction (a few pages: fewer commits, the write lock held well under 1 s).
ROWS_PER_COMMIT = 5000
#: SQLite page cache of the syncing connection, in KiB (grows only as used).
SQLITE_CACHE_KIB = 65536
#: WAL pages between automatic checkpoints while syncing (SQLite's default is 1,000; ~40 MB here).
SQLITE_CHECKPOINT_PAGES = 10_000
#: Rows written by one sync after which it checkpoints the WAL itself before it ends (a small
#: incremental sync leaves that to SQLite's automatic checkpoint instead of paying an fsync).
CHECKPOINT_AFTER_ROWS = 10_000


class SyncStatus(StrEnum):
    """How one list sync ended."""

    OK = "ok"
    INCOMPLETE = "incomplete"  # records kept changing while paging: bookmark not moved
    FAILED = "failed"
    CONNECTION_LOST = "connection_lost"


@dataclass
class SyncReport:
    """What one list sync did (also stored as a ``SyncRun`` row)."""

    connection_id: uuid.UUID
    list_name: str
    mode: str
    status: SyncStatus = SyncStatus.OK
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    archived: int = 0
    passes: int = 0
    bookmark_before: datetime | None = None
    bookmark_after: datetime | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for task results, artifacts and events)."""
        return {
            "list": self.list_name,
            "mode": self.mode,
            "status": self.status.value,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "archived": self.archived,
            "passes": self.passes,
            "bookmark_before": _iso(self.bookmark_before),
            "bookmark_after": _iso(self.bookmark_after),
            "error": self.error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def sync_list(
    engine: Engine,
    client: NomiClient,
    *,
    connection_id: uuid.UUID,
    list_name: str,
    mode: SyncMode = "incremental",
    lookback: timedelta = timedelta(seconds=300),
    page_size: int = PAGE_SIZE,
    max_passes: int = 3,
) -> SyncReport:
    """Mirror one Nomi list of one connection into its table.

    Args:
        engine: The connector database.
        client: A client acting for the connection's organisation.
        connection_id: The connection whose rows to write.
        list_name: One of `LISTS` (``suppliers``, ``customers``, ``categories``, ``tax_rates``,
            ``bank_accounts``).
        mode: ``incremental`` (from the bookmark minus ``lookback``) or ``full`` (everything, and
            rows Nomi no longer returns are archived).
        lookback: How far before the bookmark an incremental sync starts again.
        page_size: Records per page asked of Nomi (at most 1000).
        max_passes: Passes over the list when records change while paging.

    Returns:
        A `SyncReport` (status ``ok`` or ``incomplete``); a ``SyncRun`` row has been committed.

    Raises:
        ValueError: Unknown list or mode.
        NomiError: Nomi failed (``ConnectionLostError`` when a reconnect is needed); a ``SyncRun``
            row with status ``failed``/``connection_lost`` is committed and the bookmark is kept.
    """
    spec = list_specs().get(list_name)
    if spec is None:
        raise ValueError(f"unknown list {list_name!r}; use one of {', '.join(LISTS)}")
    if mode not in ("incremental", "full"):
        raise ValueError(f"unknown sync mode {mode!r}; use incremental or full")
    report = SyncReport(connection_id=connection_id, list_name=spec.name.value, mode=mode)
    with db_session(engine) as session:
        report.bookmark_before = get_bookmark(
            session, connection_id=connection_id, list_name=spec.name.value
        )
    since = None
    if mode == "incremental" and report.bookmark_before is not None:
        since = report.bookmark_before - lookback
    try:
        signpost, drifting = _passes(engine, client, spec, report, since, page_size, max_passes)
        if mode == "full" and not drifting:
            with db_session(engine) as session:
                report.archived += _archive_unseen(session, spec, connection_id, report.started_at)
    except Exception as exc:
        lost = isinstance(exc, ConnectionLostError)
        report.status = SyncStatus.CONNECTION_LOST if lost else SyncStatus.FAILED
        report.error = short_error(f"{type(exc).__name__}: {exc}")
        _finish(engine, report, move_bookmark_to=None)
        raise
    report.status = SyncStatus.INCOMPLETE if drifting else SyncStatus.OK
    _finish(engine, report, move_bookmark_to=None if drifting else signpost)
    return report


def _passes(
    engine: Engine,
    client: NomiClient,
    spec: ListSpec,
    report: SyncReport,
    since: datetime | None,
    page_size: int,
    max_passes: int,
) -> tuple[datetime | None, bool]:
    """Page through the list until a pass sees no drift; returns (signpost, still drifting)."""
    signpost: datetime | None = None
    drifting = True
    writer = PageWriter(
        engine.dialect,
        spec.table,
        spec.columns,
        connection_id=report.connection_id,
        seen_at=report.started_at,
    )
    # One connection for the whole sync. Pages are buffered and written a few at a time, each
    # group in its own short transaction (IMMEDIATE on SQLite, so the read that counts the rows
    # and their write never race another writer); the write lock is never held while paging.
    pending: list[tuple[str, tuple[Any, ...], datetime | None]] = []
    with (
        engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn,
        _sqlite_tuning(conn, report),
    ):
        while drifting and report.passes < max(1, max_passes):
            report.passes += 1
            result = spec.fetch(
                client, updated_since=since, include_archived=True, page_size=page_size
            )
            # Keep Nomi busy while a group is written: buffer as many pages as a group holds.
            ahead = max(2, ROWS_PER_COMMIT // max(1, page_size) + 1)
            for page in result.iter_pages(prefetch=ahead):
                if signpost is None:
                    signpost = result.server_time
                report.fetched += len(page)
                pending.extend((rec.id, spec.to_row(rec), rec.updated_at) for rec in page)
                if len(pending) >= ROWS_PER_COMMIT:
                    _write(conn, writer, report, pending)
                    pending = []
            _write(conn, writer, report, pending)
            pending = []
            if signpost is None:
                signpost = result.server_time
            drifting = result.drift_detected
    return signpost, drifting


@contextmanager
def _sqlite_tuning(conn: sa.Connection, report: SyncReport) -> Iterator[None]:
    """On SQLite, give this connection a larger page cache and rarer checkpoints while it syncs.

    The unique index on ``(connection_id, nomi_id)`` is probed at random (Nomi's ids); with
    SQLite's default 2 MB cache a large list re-reads index pages for every group, and the default
    checkpoint every 1,000 WAL pages copies the same index pages back into the file again and again.
    The cache (`SQLITE_CACHE_KIB`) only grows as used; checkpoints come every
    `SQLITE_CHECKPOINT_PAGES` (the WAL stays bounded). The connection's settings are put back and
    after a large sync (`CHECKPOINT_AFTER_ROWS` rows written) the WAL is checkpointed (``PASSIVE``:
    never waits for other connections) before the sync ends, so the next small write (a publishing
    item, this sync's own ``SyncRun`` row) does not pay for copying up to
    `SQLITE_CHECKPOINT_PAGES` pages of the sync's writes.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    cursor = conn.connection.cursor()  # autocommit driver connection: no transaction taken
    try:
        cache = int(cursor.execute("PRAGMA cache_size").fetchone()[0])
        checkpoint = int(cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        cursor.execute(f"PRAGMA cache_size=-{int(SQLITE_CACHE_KIB)}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(SQLITE_CHECKPOINT_PAGES)}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA wal_autocheckpoint={checkpoint}")
            cursor.execute(f"PRAGMA cache_size={cache}")
            if report.inserted + report.updated + report.archived >= CHECKPOINT_AFTER_ROWS:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        cursor.close()


def _write(
    conn: sa.Connection,
    writer: PageWriter,
    report: SyncReport,
    records: list[tuple[str, tuple[Any, ...], datetime | None]],
) -> None:
    """Count and upsert buffered records in one transaction; adds the counts to the report."""
    if not records:
        return
    with conn.begin():
        cursor = conn.connection.cursor()
        try:
            counts = writer.write(cursor, records)
        finally:
            cursor.close()
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.archived += counts.archived


def _finish(engine: Engine, report: SyncReport, *, move_bookmark_to: datetime | None) -> None:
    """Append the ``SyncRun`` row and move the bookmark (rows are already committed)."""
    report.finished_at = utcnow()
    if move_bookmark_to is not None:
        report.bookmark_after = move_bookmark_to
    else:
        report.bookmark_after = report.bookmark_before
    with db_session(engine) as session:
        if move_bookmark_to is not None:
            set_bookmark(
                session,
                connection_id=report.connection_id,
                list_name=report.list_name,
                bookmark=move_bookmark_to,
            )
        record_sync_run(
            session,
            connection_id=report.connection_id,
            list_name=report.list_name,
            mode=report.mode,
            started_at=report.started_at,
            finished_at=report.finished_at,
            fetched=report.fetched,
            inserted=report.inserted,
            updated=report.updated,
            archived=report.archived,
            bookmark_before=report.bookmark_before,
            bookmark_after=report.bookmark_after,
            status=report.status.value,
            error=report.error,
        )


def _archive_unseen(
    session: Session, spec: ListSpec, connection_id: uuid.UUID, seen_at: datetime
) -> int:
    """Mark rows a full pass did not see as archived; returns how many."""
    table = spec.table
    result = session.connection().execute(
        sa.update(table)
        .where(
            table.c.connection_id == connection_id,
            table.c.last_seen_at < seen_at,
            table.c.status != ARCHIVED,
        )
        .values(status=ARCHIVED)
    )
    return int(result.rowcount or 0)
