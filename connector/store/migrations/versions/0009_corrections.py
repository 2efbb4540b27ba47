"""Corrections and voids of published items (issue 21): record generations on items

``items`` gains ``record_generation`` (the generation of the Nomi record in ``nomi_record_id``:
0 for the first publish, +1 per correction; it is in the record's ``source_id`` and in every
idempotency key of a correction), ``voided_record_ids`` (the Nomi records of earlier generations,
voided, oldest first, each ``<record type>:<id>``) and ``pending_correction`` (the edit a claimed
correction or archive applies once Nomi has voided the old record; empty otherwise). See
docs/publishing.md "Corrections and voids".

Only columns are added, with server defaults, so existing rows read as generation 0, nothing
voided, nothing pending.

Revision ID: 0009_corrections
Revises: 0008_duplicates
Create Date: 2026-12-03 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_corrections"
down_revision: str | Sequence[str] | None = "0008_duplicates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("record_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("voided_record_ids", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("pending_correction", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema (the generations and voided record ids are lost).

    ``ALTER TABLE .. DROP COLUMN`` on both databases (SQLite 3.35+): a batch rebuild of ``items``
    would drop the table the history rows reference.
    """
    for column in ("pending_correction", "voided_record_ids", "record_generation"):
        op.execute(f"ALTER TABLE items DROP COLUMN {column}")
