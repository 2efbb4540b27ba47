"""The task runtime gives tasks a working Nomi client for a connected business."""

from __future__ import annotations

from typing import cast

from sqlmodel import select

from blocks.app import NomiApp
from connector.store.models import Connection
from tasks.runtime import business_and_connection, db, nomi_client


def test_a_connected_business_gets_a_client_that_reads_its_organisations_suppliers(
    connect_business, connector_db, nomi_app
):
    business = connect_business()
    with db(connector_db) as session:
        _, connection = business_and_connection(session, business.slug)
        assert connection is not None
        assert session.exec(select(Connection)).all() == [connection]
    with nomi_client(cast(NomiApp, NomiApp.load(nomi_app)), connection) as nomi:
        suppliers = list(nomi.iter_suppliers())
        organisations = nomi.connections()
    assert suppliers, "the sandbox seeds suppliers for every organisation"
    assert business.tenant_id in {o.tenant_id for o in organisations}


def _read_then_write_while_another_connection_commits(
    url: str, *, write: bool, commit_first: bool = False
) -> int:
    """Read in one session, let another connection insert and commit, then write in the first.

    ``commit_first``: the session commits a transaction before that read (a new one begins).
    """
    import threading
    import time

    from connector.store.models import Business

    def other() -> None:
        with db(url) as b:
            b.add(Business(slug="other", name="Other Ltd"))

    with db(url, write=write) as a:
        if commit_first:
            a.add(Business(slug="first", name="First Ltd"))
            a.commit()
        a.exec(select(Business)).all()
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)  # without write=True the other insert commits here
        a.add(Business(slug="mine", name="Mine Ltd"))
        a.flush()
    thread.join(timeout=30)
    with db(url) as s:
        return len(s.exec(select(Business)).all())


def test_a_write_session_reads_then_writes_while_another_connection_commits(connector_db):
    assert _read_then_write_while_another_connection_commits(connector_db, write=True) == 2


def test_a_write_session_writes_again_after_committing_in_the_middle(connector_db):
    assert (
        _read_then_write_while_another_connection_commits(
            connector_db, write=True, commit_first=True
        )
        == 3
    )


def test_a_plain_session_cannot_upgrade_its_read_snapshot_on_sqlite(connector_db):
    import pytest
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError, match="database is locked"):
        _read_then_write_while_another_connection_commits(connector_db, write=False)
