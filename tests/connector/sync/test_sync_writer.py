"""`connector.sync.writer.PageWriter` on SQLite and PostgreSQL: counts, guards, stored values."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from connector.store.models import Supplier, TaxRate
from connector.sync.catalog import CONTACT_COLUMNS
from connector.sync.lists import (
    CHECKPOINT_AFTER_ROWS,
    SQLITE_CACHE_KIB,
    SQLITE_CHECKPOINT_PAGES,
    SyncReport,
    _sqlite_tuning,
)
from connector.sync.writer import PageWriter, ordered_ids
from tests.connector.factories import make_business, make_connection

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONTACT = CONTACT_COLUMNS  # the columns the supplier/customer sync writes


def _setup(url: str) -> tuple[Engine, uuid.UUID]:
    engine = make_engine(url)
    migrate(engine)
    with db_session(engine) as session:
        business = make_business(session)
        connection = make_connection(session, business=business)
        session.commit()
        return engine, connection.id


def _contact(name: str, status: str = "ACTIVE") -> tuple[Any, ...]:
    return (name, name.lower(), status, None, "tr-1", None, "GBP")


def _write(
    engine: Engine,
    table: sa.Table,
    columns: tuple[str, ...],
    connection_id: uuid.UUID,
    records: Sequence[tuple[str, tuple[Any, ...], datetime | None]],
    seen_at: datetime,
) -> tuple[int, int, int]:
    writer = PageWriter(
        engine.dialect, table, columns, connection_id=connection_id, seen_at=seen_at
    )
    with engine.connect() as conn, conn.begin():
        cursor = conn.connection.cursor()
        counts = writer.write(cursor, records)
        cursor.close()
    return counts.inserted, counts.updated, counts.archived


def _suppliers(engine: Engine) -> dict[str, Supplier]:
    with db_session(engine) as session:
        return {row.nomi_id: row for row in session.exec(select(Supplier))}


def test_counts_guards_and_stored_values(database_url: str) -> None:
    """New, changed, unchanged and archived rows are counted; older versions never win."""
    engine, connection_id = _setup(database_url)
    table = Supplier.__table__  # type: ignore[attr-defined]
    first = [("a", _contact("Acme"), T0), ("b", _contact("Bolt"), T0), ("c", _contact("Cog"), T0)]
    assert _write(engine, table, CONTACT, connection_id, first, T0) == (3, 0, 0)
    stored = _suppliers(engine)
    assert set(stored) == {"a", "b", "c"}
    assert stored["a"].connection_id == connection_id
    assert stored["a"].nomi_updated_at == T0
    assert stored["a"].last_seen_at == T0
    assert stored["a"].name == "Acme"
    assert stored["a"].default_tax_rate_id == "tr-1"
    assert stored["a"].id.version == 7

    later = T0 + timedelta(hours=1)
    second = [
        ("a", _contact("Acme"), later),  # only the version moved: not counted
        ("b", _contact("Bolt Two"), later),  # renamed
        ("c", _contact("Cog", "ARCHIVED"), later),  # archived
        ("d", _contact("Dial"), later),  # new
        ("d", _contact("Dial Again"), later),  # the same id twice in a batch: the last wins
    ]
    assert _write(engine, table, CONTACT, connection_id, second, later) == (1, 1, 1)
    stored = _suppliers(engine)
    assert stored["b"].name == "Bolt Two"
    assert stored["c"].status == "ARCHIVED"
    assert stored["d"].name == "Dial Again"
    assert stored["a"].last_seen_at == later

    # An older Nomi version (a slower concurrent sync) does not overwrite, nor move
    # last_seen_at back.
    stale = [("b", _contact("Bolt Old"), T0)]
    _write(engine, table, CONTACT, connection_id, stale, T0)
    stored = _suppliers(engine)
    assert stored["b"].name == "Bolt Two"
    assert stored["b"].nomi_updated_at == later
    assert stored["b"].last_seen_at == later
    engine.dispose()


def test_numeric_column_unchanged_is_not_counted(database_url: str) -> None:
    """A tax rate read back (Decimal on both databases) compares equal to the same record."""
    engine, connection_id = _setup(database_url)
    table = TaxRate.__table__  # type: ignore[attr-defined]
    columns = ("name", "status", "code", "rate", "applies_to")
    record = [("t1", ("Standard", "ACTIVE", "S", Decimal("20.0000"), "BOTH"), T0)]
    assert _write(engine, table, columns, connection_id, record, T0) == (1, 0, 0)
    assert _write(engine, table, columns, connection_id, record, T0) == (0, 0, 0)
    changed = [("t1", ("Standard", "ACTIVE", "S", Decimal("17.5"), "BOTH"), T0)]
    assert _write(engine, table, columns, connection_id, changed, T0) == (0, 1, 0)
    with db_session(engine) as session:
        (rate,) = session.exec(select(TaxRate)).all()
    assert rate.rate == Decimal("17.5")
    engine.dispose()


def test_ordered_ids_are_version_7_and_time_ordered() -> None:
    """Ids carry the version/variant bits, are unique, and later batches sort after earlier."""
    early = ordered_ids(500)
    late = ordered_ids(500)
    ids = [uuid.UUID(bytes=raw) for raw in early + late]
    assert len(set(ids)) == 1000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert max(raw[:6] for raw in early) <= min(raw[:6] for raw in late)


def test_sqlite_tuning_is_put_back(tmp_path: object) -> None:
    """The syncing connection's page cache and checkpoint interval are restored afterwards."""
    engine = make_engine(f"sqlite:///{tmp_path}/tuning.db")
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        before = (
            driver.execute("PRAGMA cache_size").fetchone()[0],
            driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        )
        with _sqlite_tuning(conn, SyncReport(uuid.uuid4(), "suppliers", "full")):
            assert driver.execute("PRAGMA cache_size").fetchone()[0] == -SQLITE_CACHE_KIB
            assert (
                driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_CHECKPOINT_PAGES
            )
        after = (
            driver.execute("PRAGMA cache_size").fetchone()[0],
            driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        )
    assert after == before
    engine.dispose()


@pytest.mark.parametrize(("written", "checkpointed"), [(CHECKPOINT_AFTER_ROWS, True), (999, False)])
def test_a_large_sync_checkpoints_its_wal_before_it_ends(
    tmp_path: object, written: int, checkpointed: bool
) -> None:
    """A sync that wrote many rows checkpoints the WAL itself; a small one leaves it to SQLite."""
    engine = make_engine(f"sqlite:///{tmp_path}/checkpoint.db")
    report = SyncReport(uuid.uuid4(), "suppliers", "full")
    statements: list[str] = []
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.set_trace_callback(statements.append)
        with _sqlite_tuning(conn, report):
            report.inserted = written
        driver.set_trace_callback(None)
    engine.dispose()
    assert ("PRAGMA wal_checkpoint(PASSIVE)" in statements) is checkpointed
