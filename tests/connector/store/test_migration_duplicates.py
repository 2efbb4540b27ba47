"""Migration 0008 (issue 21): every stored item gets its supplier key; downgrade drops it all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from connector.store.db import alembic_config, make_engine, migrate, session
from connector.store.models import DuplicateRelease, Item
from tests.connector.factories import make_business

BEFORE = "0007_history_documents"


def test_0008_stores_the_supplier_key_of_existing_items_and_downgrade_drops_the_new_parts(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        migrate(engine, BEFORE)
        ids = {name: uuid.uuid4() for name in ("ACME Limited", "🦷", None)}
        with session(engine) as s:
            business = make_business(s)
            for n, (name, item_id) in enumerate(ids.items()):
                s.connection().execute(
                    sa.text(
                        "INSERT INTO items (id, business_id, kind, status, review_reasons,"
                        " external_id, contact_name, currency, total, paid, resolved_sources,"
                        " publish_generation, image_published, payment_recorded,"
                        " contact_confirmed, created_at, updated_at) VALUES (:id, :b, 'cost',"
                        " 'published', '[]', :ext, :name, 'GBP', 12.00, false, '{}', 1, false,"
                        " false, false, :now, :now)"
                    ),
                    {
                        "id": item_id.hex if sqlite else item_id,
                        "b": business.id.hex if sqlite else business.id,
                        "ext": f"old-{n}",
                        "name": name,
                        "now": datetime.now(UTC),
                    },
                )
            business_id = business.id
        migrate(engine)
        with session(engine) as s:
            keys = {name: s.get(Item, item_id).supplier_key for name, item_id in ids.items()}  # type: ignore[union-attr]
            assert keys == {"ACME Limited": "acme", "🦷": None, None: None}
            s.add(
                DuplicateRelease(
                    business_id=business_id,
                    item_id=ids["ACME Limited"],
                    other_item_id=ids["🦷"],
                )
            )
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("items")}
        assert {"ix_items_duplicate_amounts", "ix_items_duplicate_reference"} <= indexes
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), BEFORE)
        assert "duplicate_releases" not in sa.inspect(engine).get_table_names()
        columns = {c["name"] for c in sa.inspect(engine).get_columns("items")}
        assert "supplier_key" not in columns
        migrate(engine)  # and up again
    finally:
        engine.dispose()
