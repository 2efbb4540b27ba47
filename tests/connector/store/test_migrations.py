"""The Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from connector.store.base import metadata
from connector.store.db import alembic_config, make_engine, migrate, session
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


def test_0006_keeps_existing_items_valid_as_one_line_invoices_and_adds_organisations(
    database_url: str,
) -> None:
    """Issue 20: an item stored before 0006 is an invoice without lines, rate or credit."""
    import datetime as dt

    from alembic import command

    from connector.rules.vocabulary import DocumentType
    from connector.store.models import Organisation
    from tests.connector.factories import make_business, make_connection

    engine = make_engine(database_url)
    try:
        migrate(engine, "0005_issue15_name_keys")
        item_id = uuid.uuid4()
        with session(engine) as s:
            business = make_business(s)
            connection_id = make_connection(s, business=business).id
            s.connection().execute(
                sa.text(
                    "INSERT INTO items (id, business_id, kind, status, review_reasons, external_id,"
                    " currency, total, paid, resolved_sources, publish_generation,"
                    " image_published, payment_recorded, contact_confirmed, created_at,"
                    " updated_at) VALUES (:id, :b, 'cost', 'ready', '[]', 'old-1', 'GBP', 12.00,"
                    " false, '{}', 1, false, false, false, :now, :now)"
                ),
                {
                    "id": item_id.hex if engine.dialect.name == "sqlite" else item_id,
                    "b": business.id.hex if engine.dialect.name == "sqlite" else business.id,
                    "now": datetime.now(UTC),
                },
            )
        migrate(engine)
        with session(engine) as s:
            old = s.get(Item, item_id)
            assert old is not None
            assert old.document_type == DocumentType.INVOICE
            assert (old.lines, old.resolved_lines) == ([], [])
            assert old.credits_external_id is None
            assert old.exchange_rate is None
            s.add(
                Organisation(
                    connection_id=connection_id,
                    nomi_id="org-1",
                    name="Acme",
                    base_currency="EUR",
                    lock_date=dt.date(2026, 1, 31),
                )
            )
            old.exchange_rate = Decimal("123456789.123456")
        with session(engine) as s:
            org = s.execute(sa.select(Organisation)).scalar_one()
            assert (org.base_currency, org.lock_date) == ("EUR", dt.date(2026, 1, 31))
            again = s.get(Item, item_id)
            assert again is not None
            assert again.exchange_rate == Decimal("123456789.123456")
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005_issue15_name_keys")
        assert "organisations" not in sa.inspect(engine).get_table_names()
        columns = {c["name"] for c in sa.inspect(engine).get_columns("items")}
        assert "lines" not in columns
        assert "document_type" not in columns
    finally:
        engine.dispose()


def test_0007_leaves_old_attempts_without_document_amounts_and_new_ones_keep_them(
    database_url: str,
) -> None:
    """Issue 20: attempts written before 0007 read as "not recorded" (None), never as 0 or GBP."""
    from alembic import command
    from sqlmodel import col

    from connector.store.history_tables import PublishAttempt, SyncRun
    from tests.connector.factories import make_business, make_connection

    engine = make_engine(database_url)
    try:
        migrate(engine, "0006_documents")
        old_id = uuid.uuid4()

        def raw(value: uuid.UUID) -> object:
            return value.hex if engine.dialect.name == "sqlite" else value

        with session(engine) as s:
            business = make_business(s)
            # The item as the 0006 schema has it (the model has columns of later migrations).
            item_id = uuid.uuid4()
            s.connection().execute(
                sa.text(
                    "INSERT INTO items (id, business_id, kind, status, review_reasons,"
                    " external_id, contact_name, currency, total, paid, resolved_sources,"
                    " publish_generation, image_published, payment_recorded,"
                    " contact_confirmed, created_at, updated_at) VALUES (:id, :b, 'cost',"
                    " 'published', '[]', 'old-1', 'Acme', 'GBP', 12.00, false, '{}', 1, false,"
                    " false, false, :now, :now)"
                ),
                {"id": raw(item_id), "b": raw(business.id), "now": datetime.now(UTC)},
            )
            s.connection().execute(
                sa.text(
                    "INSERT INTO publish_attempts (id, run_id, item_id, business_id, attempt_no,"
                    " step, outcome, at) VALUES (:id, :run, :item, :b, 1, 'expense',"
                    " 'published', :now)"
                ),
                {
                    "id": raw(old_id),
                    "run": raw(uuid.uuid4()),
                    "item": raw(item_id),
                    "b": raw(business.id),
                    "now": datetime.now(UTC),
                },
            )
            business_id = business.id
            connection_id = make_connection(s, business=business).id
        migrate(engine)
        with session(engine) as s:
            old = s.get(PublishAttempt, old_id)
            assert old is not None
            assert (old.document_type, old.currency, old.total) == (None, None, None)
            assert (old.base_currency, old.base_total) == (None, None)
            s.add(
                PublishAttempt(
                    run_id=uuid.uuid4(),
                    item_id=item_id,
                    business_id=business_id,
                    step="expense",
                    outcome="published",
                    document_type="credit_note",
                    currency="EUR",
                    total=Decimal("100.00"),
                    base_currency="GBP",
                    base_total=Decimal("85.43"),
                )
            )
            s.add(
                SyncRun(
                    connection_id=connection_id,
                    list_name="organisation",
                    mode="full",
                    status="ok",
                    detail="lock date 2025-12-31 -> 2026-03-31",
                )
            )
        with session(engine) as s:
            new = s.execute(
                sa.select(PublishAttempt).where(col(PublishAttempt.id) != old_id)
            ).scalar_one()
            assert (new.document_type, new.currency, new.total) == (
                "credit_note",
                "EUR",
                Decimal("100.00"),
            )
            assert (new.base_currency, new.base_total) == ("GBP", Decimal("85.43"))
            run = s.execute(sa.select(SyncRun)).scalar_one()
            assert run.detail == "lock date 2025-12-31 -> 2026-03-31"
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0006_documents")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("publish_attempts")}
        assert not columns & {"document_type", "currency", "total", "base_currency", "base_total"}
        assert "detail" not in {c["name"] for c in sa.inspect(engine).get_columns("sync_runs")}
    finally:
        engine.dispose()
