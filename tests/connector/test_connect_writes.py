"""The connect tasks write in write transactions.

Publishing commits all the time. On SQLite a transaction that read and then writes cannot become a
writer once another connection has committed in between: it fails at once ("database is
locked"), with no busy wait. A reconnect recorded while other businesses publish must wait its
turn instead.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from connector.connecting import ConsentRequest
from connector.db import make_engine, migrate
from connector.models import Connection, ConnectionStatus
from nomi.models import Organisation
from tasks.connect import record_connected
from tasks.runtime import engine_for
from tests.connector.factories import make_business, make_connection, make_user


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/connector.db"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@contextmanager
def commit_elsewhere_before_first_write(database_url: str) -> Iterator[list[BaseException]]:
    """Just before the task's first INSERT/UPDATE, another connection commits a write.

    The other write runs on its own thread: under the task's write transaction it waits for the
    task's commit (the test waits at most 2 s for it before letting the task go on).
    """
    engine = engine_for(database_url)
    other = make_engine(database_url)
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def write_elsewhere() -> None:
        try:
            with other.begin() as conn:
                conn.execute(sa.text("UPDATE businesses SET name = name || '.'"))
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not threads and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            thread = threading.Thread(target=write_elsewhere)
            threads.append(thread)
            thread.start()
            thread.join(timeout=2)

    sa.event.listen(engine, "before_cursor_execute", hook)
    try:
        yield errors
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)
        for thread in threads:
            thread.join(timeout=60)
        other.dispose()
    assert threads, "the task wrote nothing: the test proves nothing"


def test_a_reconnect_is_recorded_while_another_connection_commits(database_url: str) -> None:
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        user = make_user(s)
        connection = make_connection(s, business=business, status=ConnectionStatus.EXPIRED)
        s.commit()
    request = ConsentRequest(
        business_id=business.id,
        business_slug=business.slug,
        user_id=user.id,
        tenant_id=connection.nomi_tenant_id,
        organisation_name=connection.organisation_name,
    )
    organisation = Organisation(tenant_id=connection.nomi_tenant_id, tenant_name="Bright Smile")

    with commit_elsewhere_before_first_write(database_url) as errors:
        connection_id = record_connected.fn(
            database_url,
            request,
            purpose="reconnect",
            organisation=organisation,
            scopes=["offline_access"],
            block_name=f"nomi-credentials-{uuid.uuid4().hex[:6]}",
            consent_expires_at=datetime.now(UTC) + timedelta(days=365),
        )

    assert errors == []
    with Session(engine) as s:
        stored = s.get(Connection, connection_id)
        assert stored is not None
        assert stored.status == ConnectionStatus.CONNECTED
    engine.dispose()
