"""Alembic migrations of the connector database (run with ``connector.store.db.migrate``)."""
