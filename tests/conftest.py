"""Shared test set-up: an isolated Prefect home, SQLite and PostgreSQL URLs, a Prefect server.

Fixtures that belong to one package live in that package's own ``tests/<package>/conftest.py``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

# Must happen before anything imports prefect: tests never touch a real Prefect home or API.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="nomi-test-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)

import pytest
import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "NOMI_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server for the whole session (about 10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def _create_postgres_database() -> str:
    name = f"nomi_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    url = _create_postgres_database()
    try:
        yield url
    finally:
        _drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """An empty database URL: a SQLite file, then the local PostgreSQL (DB tests run on both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/connector.db"
    else:
        url = _create_postgres_database()
        try:
            yield url
        finally:
            _drop_postgres_database(url)
