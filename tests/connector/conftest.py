"""Fixtures for connector tests: a migrated engine on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.db import make_engine, migrate


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty connector database (runs each test on SQLite and on PostgreSQL)."""
    built = make_engine(database_url)
    migrate(built)
    try:
        yield built
    finally:
        built.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on ``engine`` (``expire_on_commit=False``), closed afterwards."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
