"""Alembic environment: targets the connector tables (``connector.store.base.metadata``).

Run through ``connector.store.db.migrate(engine)``, which passes an open connection in
``config.attributes["connection"]``; otherwise the URL comes from ``ConnectorSettings``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import connector.connections.oauth_states
import connector.store.history_tables
import connector.store.models  # noqa: F401
from connector.store.base import metadata

target_metadata = metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection handed in by ``connector.store.db.migrate``, or a fresh engine."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from connector.settings import ConnectorSettings
    from connector.store.db import make_engine

    engine = make_engine(ConnectorSettings().database_url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError(
        "offline (SQL script) migrations are not supported; use connector.store.db.migrate"
    )
run_migrations_online()
