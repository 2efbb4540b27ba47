"""Drop the single-column connection_id indexes of the five mirrored list tables

Each list table (suppliers, customers, categories, tax_rates, bank_accounts) also has the unique
index on ``(connection_id, nomi_id)``, which leads with ``connection_id`` and serves every query
(and foreign-key check) the single-column index served. The duplicate cost every synced row one
more B-tree write: a full sync of 100,000 suppliers wrote four index entries per row instead of
three.

Revision ID: 0004_list_connection_indexes
Revises: 0003_items_id_ready_at
Create Date: 2026-11-26 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_list_connection_indexes"
down_revision: str | Sequence[str] | None = "0003_items_id_ready_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("suppliers", "customers", "categories", "tax_rates", "bank_accounts")


def upgrade() -> None:
    """Upgrade schema."""
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_connection_id"))


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f(f"ix_{table}_connection_id"), ["connection_id"], unique=False
            )
