"""Alembic migrations of the connector database (run with ``connector.db.migrate``)."""
