"""History of documents (issue 20): document type, currency and base-currency amounts on attempts

``publish_attempts`` gains ``document_type``, ``currency``, ``total`` (in the document's currency),
``base_currency`` (the organisation's, as mirrored when the attempt was made) and ``base_total``
(the total in that base currency), all nullable: rows written before this migration have none of
them, and the report and the export read them as "not recorded" (empty), never as 0 or GBP.
``base_total`` is also empty on a new row when the amount in base currency could not be known
(see docs/history.md "Documents and currencies"). ``sync_runs`` gains ``detail``: what a sync of
the organisation found changed (lock date, base currency), empty otherwise.

Only columns are added (``ALTER TABLE .. ADD COLUMN`` on both databases, no table rebuild), so the
upgrade costs no time on a large history.

Revision ID: 0007_history_documents
Revises: 0006_documents
Create Date: 2026-12-03 12:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007_history_documents"
down_revision: str | Sequence[str] | None = "0006_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("publish_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_type", _text(20), nullable=True))
        batch_op.add_column(sa.Column("currency", _text(3), nullable=True))
        batch_op.add_column(sa.Column("total", sa.Numeric(precision=18, scale=2), nullable=True))
        batch_op.add_column(sa.Column("base_currency", _text(3), nullable=True))
        batch_op.add_column(
            sa.Column("base_total", sa.Numeric(precision=18, scale=2), nullable=True)
        )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", _text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema (the recorded document types, currencies and amounts are lost)."""
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("publish_attempts", schema=None) as batch_op:
        batch_op.drop_column("base_total")
        batch_op.drop_column("base_currency")
        batch_op.drop_column("total")
        batch_op.drop_column("currency")
        batch_op.drop_column("document_type")
