"""Documents (issue 20): credit notes, lines, foreign currency, and the mirrored organisation

``items`` gains ``document_type`` (``invoice`` for every existing row: they were all invoices or
receipts, and the two publish alike), ``credits_external_id`` (the item a credit note credits),
``exchange_rate`` (base units per document unit, 6 decimals, optional), ``lines`` (the imported
lines, JSON, ``[]`` for a one-line item) and ``resolved_lines`` (what assessment resolved each line
to, JSON). ``organisations`` holds the Nomi organisation of each connection (base currency, lock
date), at most one row per connection, written by the sync.

Why JSON and not a table of lines: the lines are part of the item, written with it in the same
``INSERT`` (intake's one-statement chunks stay one statement), read with it by the same Core select
(assessment and publishing read items as rows, without a per-item query) and resolved with it in
the same guarded ``UPDATE``, so an item and its lines can never be half written or disagree.
No query ever looks for a line apart from its item.

Revision ID: 0006_documents
Revises: 0005_issue15_name_keys
Create Date: 2026-12-03 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006_documents"
down_revision: str | Sequence[str] | None = "0005_issue15_name_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("nomi_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("base_currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("lock_date", sa.Date(), nullable=True),
        sa.Column("vat_registered", sa.Boolean(), nullable=False),
        sa.Column("nomi_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_organisations_connection_id_connections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("connection_id", name=op.f("uq_organisations_connection_id")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "document_type",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                server_default="invoice",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "credits_external_id",
                sqlmodel.sql.sqltypes.AutoString(length=255),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("exchange_rate", sa.Numeric(precision=15, scale=6), nullable=True)
        )
        batch_op.add_column(sa.Column("lines", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("resolved_lines", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    """Downgrade schema (lines, credit notes and rates are lost; the items stay)."""
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("resolved_lines")
        batch_op.drop_column("lines")
        batch_op.drop_column("exchange_rate")
        batch_op.drop_column("credits_external_id")
        batch_op.drop_column("document_type")
    op.drop_table("organisations")
