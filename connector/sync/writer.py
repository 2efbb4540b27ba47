"""Writing pages of mirrored Nomi records fast: prepared SQL through the raw DBAPI cursor.

`connector.sync.lists` hands each page to a `PageWriter`. The ``INSERT .. ON CONFLICT DO UPDATE``
statement (with its guards: never an older Nomi version, ``last_seen_at`` only forward) is built
with SQLAlchemy and compiled **once** per list and dialect; each page is then one
``cursor.executemany`` (psycopg pipelines it on PostgreSQL; on SQLite rows the group's ``SELECT``
did not find take a plain ``INSERT``) of plain tuples, converted by the
columns' own bind processors (UUIDs and UTC timestamps are stored exactly as the ORM stores
them). Counting new, changed and archived rows reads the page's existing rows with one plain
``SELECT`` on the same cursor, in the same transaction as the write.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlmodel import Session

ACTIVE, ARCHIVED = "ACTIVE", "ARCHIVED"
_MISSING = object()  # ids per SELECT (well under SQLite's bound-variable limit)


def ordered_ids(count: int) -> list[bytes]:
    """``count`` new time-ordered UUIDs as 16 bytes (version 7 layout: milliseconds, then random).

    New rows' keys then land at the end of the primary-key index instead of at random places,
    which keeps a large first sync from rewriting index pages all over the file at every commit.
    """
    head = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    noise = os.urandom(10 * count)
    ids: list[bytes] = []
    for k in range(count):
        tail = bytearray(noise[10 * k : 10 * k + 10])
        tail[0] = 0x70 | (tail[0] & 0x0F)  # version 7
        tail[2] = 0x80 | (tail[2] & 0x3F)  # RFC 4122 variant
        ids.append(head + tail)
    return ids


def _id_maker(table: sa.Table, dialect: Dialect) -> Callable[[bytes], Any]:
    """Turns 16 raw bytes into the ``id`` value the driver is given (as the ORM would bind it)."""
    bind = _processor(table, "id", dialect)
    if bind is None:
        return lambda raw: uuid.UUID(bytes=raw)
    probe = uuid.UUID(int=0x0123456789ABCDEF)
    if bind(probe) == probe.hex:  # stored as 32 hex digits: skip building UUID objects
        return bytes.hex
    return lambda raw: bind(uuid.UUID(bytes=raw))


@dataclass
class PageCounts:
    """How the rows of one page compare with what the table held before."""

    inserted: int = 0
    updated: int = 0
    archived: int = 0


def insert_for_dialect(dialect: Dialect, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for ``dialect`` (SQLite or PostgreSQL)."""
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    raise ValueError(f"unsupported database {dialect.name!r}")


def insert_for(session: Session, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's dialect."""
    return insert_for_dialect(session.get_bind().dialect, table)


def _processor(table: sa.Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor on ``dialect`` (None when values go as they are)."""
    bind: Callable[[Any], Any] | None = (
        table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    )
    return bind


class PageWriter:
    """Upserts pages of one list for one connection through a prepared statement.

    Args:
        dialect: The engine's dialect (SQLite or PostgreSQL).
        table: The list's table (``suppliers``, ``categories``, ...).
        columns: The mirrored columns, compared to count changes (``status`` among them).
        connection_id: The connection whose rows are written.
        seen_at: Stored as ``last_seen_at`` (moves forward only).
    """

    def __init__(
        self,
        dialect: Dialect,
        table: sa.Table,
        columns: Sequence[str],
        *,
        connection_id: uuid.UUID,
        seen_at: datetime,
    ) -> None:
        self._columns = tuple(columns)
        self._status_at = self._columns.index("status")
        names = ("id", "connection_id", "nomi_id", *self._columns)
        names = (*names, "nomi_updated_at", "last_seen_at")
        plain = insert_for_dialect(dialect, table).values({c: sa.bindparam(c) for c in names})
        stmt = plain
        excluded = stmt.excluded
        updates: dict[str, Any] = {c: excluded[c] for c in (*self._columns, "nomi_updated_at")}
        updates["last_seen_at"] = sa.case(
            (excluded.last_seen_at > table.c.last_seen_at, excluded.last_seen_at),
            else_=table.c.last_seen_at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.connection_id, table.c.nomi_id],
            set_=updates,
            where=sa.or_(
                table.c.nomi_updated_at.is_(None),
                excluded.nomi_updated_at >= table.c.nomi_updated_at,
            ),
        )
        compiled = stmt.compile(dialect=dialect)
        order = list(compiled.positiontup or []) if compiled.positional else list(names)
        if sorted(order) != sorted(names):
            raise RuntimeError(f"unexpected parameters in the upsert of {table.name}: {order}")
        self._insert_sql = compiled.string
        # On SQLite the group's transaction holds the only write lock, so ids the SELECT did not
        # find cannot appear before our INSERT: those rows take a plain INSERT (cheaper than the
        # upsert). PostgreSQL has no such lock: every row goes through the upsert there.
        plain_compiled = plain.compile(dialect=dialect)
        plain_order = list(plain_compiled.positiontup or []) if plain_compiled.positional else []
        self._plain_sql: str | None = None
        if dialect.name == "sqlite" and plain_order == order:
            self._plain_sql = plain_compiled.string
        self._positional = compiled.positional
        self._slots = {name: i for i, name in enumerate(names)}
        self._order = [self._slots[name] for name in order]
        self._names = names
        self._id = _id_maker(table, dialect)
        self._updated = _processor(table, "nomi_updated_at", dialect)
        procs = [(i, _processor(table, c, dialect)) for i, c in enumerate(self._columns)]
        self._value_procs = [(i, p) for i, p in procs if p is not None]
        cid_proc = _processor(table, "connection_id", dialect)
        seen_proc = _processor(table, "last_seen_at", dialect)
        self._connection = cid_proc(connection_id) if cid_proc else connection_id
        self._seen = seen_proc(seen_at) if seen_proc else seen_at
        self._dialect = dialect
        self._table = table
        self._selected: tuple[str, list[str]] | None = None

    def _select(self) -> tuple[str, list[str]]:
        """The compiled ``SELECT`` of a page's stored rows and its positional parameter names.

        The ids go as one parameter: an array on PostgreSQL (``= ANY``), a JSON array read with
        ``json_each`` on SQLite, so one compiled statement serves every page size.
        """
        if self._selected is None:
            table = self._table
            query = sa.select(table.c.nomi_id, *(table.c[c] for c in self._columns))
            query = query.where(table.c.connection_id == sa.bindparam("cid"))
            ids: Any = sa.bindparam("ids")
            if self._dialect.name == "postgresql":
                query = query.where(table.c.nomi_id == sa.func.any(ids))
            else:
                listed: Any = sa.select(sa.column("value")).select_from(sa.func.json_each(ids))
                query = query.where(table.c.nomi_id.in_(listed.scalar_subquery()))
            compiled = query.compile(dialect=self._dialect)
            order = list(compiled.positiontup or []) if compiled.positional else []
            self._selected = (compiled.string, order)
        return self._selected

    def write(
        self, cursor: Any, records: Iterable[tuple[str, tuple[Any, ...], datetime | None]]
    ) -> PageCounts:
        """Count and upsert one page (the caller owns the transaction).

        Args:
            cursor: A DBAPI cursor of a connection inside a transaction.
            records: ``(nomi_id, values in column order, nomi updated_at)`` per record; a later
                record with the same id replaces an earlier one.

        Returns:
            How many rows are new, changed and newly archived.
        """
        rows: dict[str, tuple[Any, ...]] = {}
        stamps: dict[str, Any] = {}
        converted: dict[Any, Any] = {}  # timestamps repeat a lot: convert each once
        for nomi_id, values, updated in records:
            if self._value_procs:
                mutable = list(values)
                for i, proc in self._value_procs:
                    mutable[i] = proc(mutable[i])
                values = tuple(mutable)
            rows[nomi_id] = values
            if self._updated is None:
                stamps[nomi_id] = updated
            else:
                stamp = converted.get(updated, _MISSING)
                if stamp is _MISSING:
                    stamp = converted[updated] = self._updated(updated)
                stamps[nomi_id] = stamp
        counts, stored = self._count(cursor, rows)
        make_id, connection, seen = self._id, self._connection, self._seen
        fresh = ordered_ids(len(rows))
        full = [
            (make_id(raw), connection, nomi_id, *values, stamps[nomi_id], seen)
            for raw, (nomi_id, values) in zip(fresh, rows.items(), strict=True)
        ]
        params: list[Any]
        if not self._positional:
            params = [dict(zip(self._names, row, strict=True)) for row in full]
        elif self._order == list(range(len(self._names))):
            params = full
        else:
            params = [tuple(row[i] for i in self._order) for row in full]
        if self._plain_sql is not None and stored:
            old_rows = [p for p, nomi_id in zip(params, rows, strict=True) if nomi_id in stored]
            new_rows = [p for p, nomi_id in zip(params, rows, strict=True) if nomi_id not in stored]
        elif self._plain_sql is not None:
            old_rows, new_rows = [], params
        else:
            old_rows, new_rows = params, []
        if new_rows:
            cursor.executemany(self._plain_sql, new_rows)
        if old_rows:
            cursor.executemany(self._insert_sql, old_rows)
        return counts

    def _count(self, cursor: Any, rows: dict[str, tuple[Any, ...]]) -> tuple[PageCounts, set[str]]:
        """Compare the page with the rows already stored (one SELECT); also their ids."""
        counts = PageCounts()
        existing: dict[str, tuple[Any, ...]] = {}
        for found in self._existing(cursor, list(rows)):
            existing[found[0]] = tuple(found[1:])
        for nomi_id, values in rows.items():
            old = existing.get(nomi_id)
            if old is None:
                counts.inserted += 1
            elif old != values:
                if old[self._status_at] == ACTIVE and values[self._status_at] == ARCHIVED:
                    counts.archived += 1
                else:
                    counts.updated += 1
        return counts, set(existing)

    def _existing(self, cursor: Any, ids: list[str]) -> list[Sequence[Any]]:
        """The stored ``(nomi_id, columns...)`` of the given ids."""
        if not ids:
            return []
        sql, order = self._select()
        if self._dialect.name == "postgresql":
            cursor.execute(sql, {"cid": self._connection, "ids": ids})
        else:
            values = {"cid": self._connection, "ids": json.dumps(ids)}
            cursor.execute(sql, tuple(values[name] for name in order))
        return list(cursor.fetchall())
