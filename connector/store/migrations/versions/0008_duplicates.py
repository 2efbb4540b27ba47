"""Possible duplicates (issue 21): the items' supplier key, its two indexes, released pairs

``items`` gains ``supplier_key``, the matching key of the contact name
(``connector.rules.names.contact_key``), computed here for every stored item in chunks, and two
indexes for the look-ups of assessment: ``(business_id, supplier_key, date, total)`` and
``(business_id, supplier_key, reference)``. ``duplicate_releases`` remembers each pair an admin
said was not a duplicate (the held item, the item it was held for), so it is never held again.

A column rather than an index on an expression: the key folds Unicode (accents, scripts, legal
suffixes) in Python, which neither SQLite nor PostgreSQL can compute. Downgrade drops all three;
the released pairs are lost with the table.

Revision ID: 0008_duplicates
Revises: 0007_history_documents
Create Date: 2026-12-03 12:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from connector.rules.names import contact_key

revision: str = "0008_duplicates"
down_revision: str | Sequence[str] | None = "0007_history_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000


def _fill_keys(conn: sa.Connection) -> None:
    """Store the key of every item with a contact name, ``_CHUNK`` rows per statement."""
    items = sa.table("items", sa.column("id"), sa.column("contact_name"), sa.column("supplier_key"))
    update = (
        sa.update(items)
        .where(items.c.id == sa.bindparam("row_id"))
        .values(supplier_key=sa.bindparam("key"))
    )
    rows = conn.execute(
        sa.select(items.c.id, items.c.contact_name).where(items.c.contact_name.is_not(None))
    ).all()
    keyed = [{"row_id": i, "key": k} for i, name in rows if (k := contact_key(name)) is not None]
    for start in range(0, len(keyed), _CHUNK):
        conn.execute(update, keyed[start : start + _CHUNK])


def upgrade() -> None:
    """Upgrade schema and data."""
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supplier_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
    _fill_keys(op.get_bind())
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_items_duplicate_amounts",
            ["business_id", "supplier_key", "date", "total"],
            unique=False,
        )
        batch_op.create_index(
            "ix_items_duplicate_reference",
            ["business_id", "supplier_key", "reference"],
            unique=False,
        )
    op.create_table(
        "duplicate_releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("other_item_id", sa.Uuid(), nullable=False),
        sa.Column("released_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_duplicate_releases_business_id_businesses"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_duplicate_releases_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["other_item_id"],
            ["items.id"],
            name=op.f("fk_duplicate_releases_other_item_id_items"),
        ),
        sa.ForeignKeyConstraint(
            ["released_by_user_id"],
            ["users.id"],
            name=op.f("fk_duplicate_releases_released_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_releases")),
        sa.UniqueConstraint(
            "item_id",
            "other_item_id",
            name=op.f("uq_duplicate_releases_item_id_other_item_id"),
        ),
    )
    with op.batch_alter_table("duplicate_releases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_releases_business_id"), ["business_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema (the keys and the released pairs are lost; the items stay)."""
    op.drop_table("duplicate_releases")
    op.drop_index("ix_items_duplicate_reference", table_name="items")
    op.drop_index("ix_items_duplicate_amounts", table_name="items")
    # A plain DROP COLUMN (SQLite 3.35+), not a batch copy of ``items``: the copy drops the
    # table, which SQLite's foreign keys refuse once publish attempts point at its items.
    op.execute("ALTER TABLE items DROP COLUMN supplier_key")
