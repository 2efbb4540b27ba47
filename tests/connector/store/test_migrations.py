"""The Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from connector.store.base import metadata
from connector.store.db import make_engine, migrate, session
from connector.store.models import Business, Item


def test_upgrade_from_empty_builds_every_table_and_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
        assert "alembic_version" in tables
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_rows_round_trip_with_aware_utc_times_and_exact_money(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        business = Business(slug="acme", name="Acme Ltd")
        item = Item(
            business_id=business.id,
            kind="cost",
            external_id="x-1",
            total=Decimal("1234567.89"),
            review_reasons=["not yet assessed"],
            resolved_sources={"category": "rule"},
        )
        with session(engine) as db:
            db.add(business)
            db.flush()
            db.add(item)
        with session(engine) as db:
            loaded = db.get(Item, item.id)
            assert loaded is not None
            assert loaded.total == Decimal("1234567.89")
            assert loaded.created_at.tzinfo is not None
            assert loaded.created_at.utcoffset() == UTC.utcoffset(None)
            assert abs((datetime.now(UTC) - loaded.created_at).total_seconds()) < 60
            assert loaded.review_reasons == ["not yet assessed"]
            assert loaded.resolved_sources == {"category": "rule"}
            assert isinstance(loaded.id, uuid.UUID)
    finally:
        engine.dispose()


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/sub/dir/c.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            busy_timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert busy_timeout is not None
            assert busy_timeout >= 5000
    finally:
        engine.dispose()


def test_0005_recomputes_the_name_keys_stored_by_the_latin_only_normaliser(
    database_url: str,
) -> None:
    """Issue 15: non-Latin names were stored with the key ''; the migration gives each its own."""
    from sqlmodel import select

    from connector.store.models import ContactRule, Customer, Supplier
    from tests.connector.factories import (
        make_business,
        make_connection,
        make_contact_rule,
        make_customer,
        make_supplier,
    )

    engine = make_engine(database_url)
    try:
        migrate(engine, "0004_list_connection_indexes")
        with session(engine) as s:
            connection = make_connection(s, business=make_business(s))
            for name in ("مطعم الشرق", "東京デンタル", 'שוקולד טוב בע"מ', "🦷"):
                make_supplier(s, connection=connection, name=name, name_normalised="")
            make_supplier(s, connection=connection, name="Acme Ltd")
            make_customer(s, connection=connection, name="Αθηνά \u0391\u0395", name_normalised="")
            make_customer(s, connection=connection, name="CAFÉ NOIR", name_normalised="cafe noir")
            # the sync derived one nomi rule per '' key; a user rule's key was always non-empty
            make_contact_rule(
                s, connection=connection, name="東京デンタル", name_normalised="", source="nomi"
            )
            make_contact_rule(s, connection=connection, name="Acme Ltd")
            connection_id = connection.id
        migrate(engine)
        with session(engine) as s:
            suppliers = {
                row.name: row.name_normalised
                for row in s.exec(select(Supplier).where(Supplier.connection_id == connection_id))
            }
            customers = {row.name: row.name_normalised for row in s.exec(select(Customer))}
            rules = {(r.name, r.source): r.name_normalised for r in s.exec(select(ContactRule))}
        assert suppliers == {
            "مطعم الشرق": "مطعم الشرق",
            "東京デンタル": "東京デンタル",
            'שוקולד טוב בע"מ': "שוקולד טוב בע מ",
            "🦷": "",
            "Acme Ltd": "acme",
        }
        assert customers == {"Αθηνά \u0391\u0395": "αθηνα αε", "CAFÉ NOIR": "cafe noir"}
        assert rules == {("東京デンタル", "nomi"): "東京デンタル", ("Acme Ltd", "user"): "acme"}
    finally:
        engine.dispose()
