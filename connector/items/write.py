"""Intake's second pass: insert the staged rows in short write transactions, then assess them.

Each chunk is one transaction (``BEGIN IMMEDIATE`` on SQLite) that skips the ``external_id`` the
business already has; ``INSERT ... ON CONFLICT DO NOTHING`` keeps two imports of one file at once
safe on PostgreSQL too. New items start in ``review`` (``NOT_ASSESSED``) and are then assessed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import operator
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from connector.errors import NotConnectedError
from connector.items.assess import reassess
from connector.items.check import ROW_COLUMNS, Staging
from connector.items.import_report import ImportReport
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import begin_write, is_sqlite
from connector.store.models import Item

NOT_ASSESSED = "not yet assessed"
#: Items assessed per write transaction.
ASSESS_ROWS = 500

_EXTERNAL_ID = ROW_COLUMNS.index("external_id")
_IMAGE_SHA = ROW_COLUMNS.index("image_sha256")


def write_rows(
    session: Session,
    business_id: uuid.UUID,
    staging: Staging,
    inserter: Inserter,
    report: ImportReport,
    used: set[str],
) -> None:
    """Insert the staged rows chunk by chunk, each chunk assessed after it is committed."""
    turns = _Turns(session, report)
    assessing = True
    for staged in staging.chunks():
        # In external-id order: two imports inserting the same ids take their row locks in the
        # same order (PostgreSQL), so neither can deadlock the other.
        rows = sorted(staged, key=operator.itemgetter(_EXTERNAL_ID))
        ids, params = inserter.prepare(rows)  # before the transaction: it stays short
        with turns.write() as connection:
            present = _present(connection, business_id, [r[_EXTERNAL_ID] for r in rows])
            fresh = [n for n, r in enumerate(rows) if r[_EXTERNAL_ID] not in present]
            inserted = inserter.insert(
                connection, [ids[n] for n in fresh], [params[n] for n in fresh]
            )
        report.duplicates.extend(r[_EXTERNAL_ID] for r in rows if r[_EXTERNAL_ID] in present)
        new: list[uuid.UUID] = []
        for n, item_id in zip(fresh, inserted, strict=True):
            if item_id is None:  # another import inserted it meanwhile
                report.duplicates.append(rows[n][_EXTERNAL_ID])
                continue
            new.append(item_id)
            if rows[n][_IMAGE_SHA]:
                used.add(rows[n][_IMAGE_SHA])
        report.imported.extend(new)
        if assessing:
            assessing = _assess_chunks(turns, business_id, new)


class _Turns:
    """The import's write transactions: timed, and on SQLite spaced so other writers get in.

    Another process waiting for SQLite's lock polls for it (every 100 ms once it has waited a
    while), so back-to-back short transactions could still starve it: after every
    ``PAUSE_AFTER`` seconds of holding the lock the import pauses ``PAUSE`` seconds, longer than
    one poll. Writers in this process queue on the writer gate and get in between any two.
    """

    PAUSE_AFTER = 0.5
    PAUSE = 0.11

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.held = 0.0
        self.pacing = is_sqlite(session.get_bind())

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction, committed when the block ends (rolled back on an error)."""
        started = time.perf_counter()
        try:
            yield begin_write(self.session)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        finally:
            took = time.perf_counter() - started
            self.report.longest_write_seconds = max(self.report.longest_write_seconds, took)
            self.held += took
        if self.pacing and self.held >= self.PAUSE_AFTER:
            time.sleep(self.PAUSE)
            self.held = 0.0


def _present(
    connection: sa.Connection, business_id: uuid.UUID, external_ids: list[str]
) -> set[str]:
    """The ``external_ids`` the business already has."""
    table = table_of(Item)
    return set(
        connection.execute(
            sa.select(table.c.external_id).where(
                table.c.business_id == business_id, table.c.external_id.in_(external_ids)
            )
        ).scalars()
    )


# Faster equivalents of SQLAlchemy's bind processors, used only where they give the very same
# values for these samples (SQLite: dates as ISO text, uuids as 32 hex digits, booleans as 0/1).
_FAST_PROCESSORS: dict[type, Callable[[Any], Any]] = {
    dt.date: dt.date.isoformat,
    uuid.UUID: operator.attrgetter("hex"),
    bool: int,
}
_SAMPLES: dict[type, list[Any]] = {
    dt.date: [dt.date(1990, 1, 1), dt.date(2026, 3, 2), dt.date(2100, 12, 31)],
    uuid.UUID: [uuid.UUID(int=0), uuid.UUID("01a23788-6618-70e5-91fa-afc763ae6521"), uuid.uuid4()],
    bool: [True, False],
}


class Inserter:
    """Inserts staged rows with one ``executemany`` per chunk, straight through the driver.

    ``stage`` turns a row's values into what the driver is given: each column's own SQLAlchemy
    bind processor (so values are stored as an ORM insert stores them), then plain text for the
    few values a SQLite staging file cannot hold as they are (dates, decimals and uuids on
    PostgreSQL, which casts the text back). The per-row work of the ORM is skipped. A row whose
    ``(business_id, external_id)`` exists by the time it is inserted is skipped
    (``ON CONFLICT DO NOTHING``, SQLite and PostgreSQL alike).
    """

    _CONSTANT = (
        "business_id",
        "status",
        "review_reasons",
        "contact_confirmed",
        "resolved_sources",
        "publish_generation",
        "image_published",
        "payment_recorded",
        "created_at",
        "updated_at",
    )

    def __init__(self, dialect: Dialect, business_id: uuid.UUID) -> None:
        self.table = table_of(Item)
        self.dialect = dialect
        self.business_id = business_id
        names = ("id", *ROW_COLUMNS, *self._CONSTANT)
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.sql = (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
            f"VALUES ({', '.join(mark for _ in names)}) "
            "ON CONFLICT (business_id, external_id) DO NOTHING"
        )
        self._id = self._processor("id")
        self._row = [
            (i, p) for i, p in ((i, self._staged(c)) for i, c in enumerate(ROW_COLUMNS)) if p
        ]
        self._texts = dialect.name != "sqlite"

    def _processor(self, column: str) -> Callable[[Any], Any] | None:
        """The column's bind processor, or a faster function that gives the same values."""
        type_ = self.table.c[column].type
        processor = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
        if processor is None:
            return None
        python_type = type_.python_type
        fast = _FAST_PROCESSORS.get(python_type)
        if fast is not None and all(
            type(fast(v)) is type(processor(v)) and fast(v) == processor(v)
            for v in _SAMPLES[python_type]
        ):
            return fast
        return processor

    def _staged(self, column: str) -> Callable[[Any], Any] | None:
        """How a row's value is staged: a JSON column (an item's lines) as its JSON text on
        every database (the staging file holds plain values; PostgreSQL casts the text), any
        other column through ``_processor``."""
        if isinstance(self.table.c[column].type, sa.JSON):
            return json.dumps
        return self._processor(column)

    def _wire(self, column: str, value: Any) -> Any:
        processor = self._processor(column)
        return processor(value) if processor is not None else value

    def stage(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The row (in ``ROW_COLUMNS`` order) as the driver will be given it."""
        values = list(row)
        for index, processor in self._row:
            if values[index] is not None:
                values[index] = processor(values[index])
        if self._texts:
            for index, value in enumerate(values):
                if isinstance(value, bool):
                    values[index] = "true" if value else "false"
                elif isinstance(value, (Decimal, dt.date, uuid.UUID)):
                    values[index] = str(value)
        return tuple(values)

    def _constants(self) -> tuple[Any, ...]:
        now = utcnow()
        values = {
            "business_id": self.business_id,
            "status": ItemStatus.REVIEW.value,
            "review_reasons": [NOT_ASSESSED],
            "contact_confirmed": False,
            "resolved_sources": {},
            "publish_generation": 1,
            "image_published": False,
            "payment_recorded": False,
            "created_at": now,
            "updated_at": now,
        }
        return tuple(self._wire(name, values[name]) for name in self._CONSTANT)

    def prepare(
        self, rows: Sequence[tuple[Any, ...]]
    ) -> tuple[list[uuid.UUID], list[tuple[Any, ...]]]:
        """New item ids for staged ``rows`` and the parameters to insert them with."""
        constants = self._constants()
        ids = ordered_ids(len(rows))
        wire = self._id
        params = [
            (wire(i) if wire else i, *row, *constants) for i, row in zip(ids, rows, strict=True)
        ]
        return ids, params

    def insert(
        self, connection: sa.Connection, ids: list[uuid.UUID], params: list[tuple[Any, ...]]
    ) -> list[uuid.UUID | None]:
        """Insert prepared rows; the id of each, or None where it was skipped (present)."""
        if not params:
            return []
        inserted = connection.exec_driver_sql(self.sql, params).rowcount
        if inserted == len(params):
            return list(ids)
        table = self.table
        found = set(connection.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars())
        return [i if i in found else None for i in ids]


def ordered_ids(count: int) -> list[uuid.UUID]:
    """``count`` new ids, each larger than any made before in this process (UUID version 7: the
    milliseconds, then a sequence that starts at random bits), so a chunk's rows land at the end
    of the primary-key index instead of all over it: far fewer pages written per transaction."""
    global _last_id
    with _ids_lock:
        start = (time.time_ns() // 1_000_000) << 74 | int.from_bytes(os.urandom(9), "big") >> 1
        start = max(start, _last_id + 1)
        _last_id = start + count - 1
    found = []
    for raw in range(start, start + count):
        millis, sequence = raw >> 74, raw & _SEQUENCE
        value = (millis << 80) | (0x7 << 76) | ((sequence >> 62) << 64) | (0b10 << 62)
        found.append(uuid.UUID(int=value | (sequence & _LOW_62)))
    return found


_SEQUENCE, _LOW_62 = (1 << 74) - 1, (1 << 62) - 1
_last_id = 0
_ids_lock = threading.Lock()


def _assess_chunks(turns: _Turns, business_id: uuid.UUID, item_ids: list[uuid.UUID]) -> bool:
    """Assess ``item_ids`` ``ASSESS_ROWS`` at a time; False when the business has no connection."""
    try:
        for start in range(0, len(item_ids), ASSESS_ROWS):
            with turns.write():
                chunk = item_ids[start : start + ASSESS_ROWS]
                done = reassess(turns.session, business_id=business_id, item_ids=chunk)
            turns.report.ready += len(done.became_ready)  # counted once committed
    except NotConnectedError:
        return False
    return True
