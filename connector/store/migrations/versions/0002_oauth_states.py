"""oauth_states: hashed OAuth state values of connect/reconnect runs

Revision ID: 0002_oauth_states
Revises: 0001
Create Date: 2026-11-26 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

# The model lives in its own module; importing it registers the table in
# connector.store.models.metadata
# so autogenerate and the migration test compare against it even when nothing else imported it.
import connector.connections.oauth_states  # noqa: F401

revision: str = "0002_oauth_states"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "oauth_states",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"], ["businesses.id"], name=op.f("fk_oauth_states_business_id_businesses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_states_business_id"), ["business_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_oauth_states_flow_run_id"), ["flow_run_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_states_state_hash"), ["state_hash"], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_states_state_hash"))
        batch_op.drop_index(batch_op.f("ix_oauth_states_flow_run_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_states_business_id"))
    op.drop_table("oauth_states")
