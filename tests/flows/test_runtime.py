"""The task runtime gives tasks a working Nomi client for a connected business."""

from __future__ import annotations

from sqlmodel import select

from blocks.app import NomiApp
from connector.models import Connection
from tasks.runtime import business_and_connection, db, nomi_client


def test_a_connected_business_gets_a_client_that_reads_its_organisations_suppliers(
    connect_business, connector_db, nomi_app
):
    business = connect_business()
    with db(connector_db) as session:
        _, connection = business_and_connection(session, business.slug)
        assert connection is not None
        assert session.exec(select(Connection)).all() == [connection]
    with nomi_client(NomiApp.load(nomi_app), connection) as nomi:
        suppliers = list(nomi.iter_suppliers())
        organisations = nomi.connections()
    assert suppliers, "the sandbox seeds suppliers for every organisation"
    assert business.tenant_id in {o.tenant_id for o in organisations}
