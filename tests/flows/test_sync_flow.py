"""The sync-nomi-reference-data flow end to end: Prefect test server, sandbox over HTTP, SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from sqlmodel import Session, select

from connector.rules.vocabulary import ConnectionStatus
from connector.store.history_tables import SyncRun
from connector.store.models import Category, Connection, Organisation, Supplier, TaxRate
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.flows.conftest import ConnectedBusiness

HARBOUR = "Harbour Coffee Co"


def events_for(slug: str, name: str, *, expect: int = 1, timeout: float = 15.0) -> list[Any]:
    """Events ``name`` about the business's connection, as the Prefect API stored them."""
    query = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[f"nomi.connection.{slug}"]),
    )
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            found = client.read_events(filter=query, limit=50).events
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture
def use_db(connector_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the flow's ConnectorSettings at the test database."""
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    return connector_db


def _count(session: Session, model: Any, connection_id: Any) -> int:
    return len(list(session.exec(select(model).where(model.connection_id == connection_id))))


def test_sync_of_one_business_mirrors_its_lists_and_reports(
    use_db: str,
    nomi_app: str,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    business = connect_business(BRIGHT_SMILE, use_supplier_tax_rates=True)

    result = sync_nomi_reference_data(
        SyncParams(business=business.slug, mode="full", app_block=nomi_app)
    )

    (summary,) = result["businesses"]
    assert summary["status"] == "ok"
    assert summary["rules_upserted"] > 0
    with db_session_for() as s:
        assert _count(s, Supplier, business.connection_id) > 0
        assert _count(s, Category, business.connection_id) > 0
        assert _count(s, TaxRate, business.connection_id) > 0
        runs = list(s.exec(select(SyncRun).where(SyncRun.connection_id == business.connection_id)))
        connection = s.get(Connection, business.connection_id)
        organisation = s.exec(
            select(Organisation).where(Organisation.connection_id == business.connection_id)
        ).one()
    assert sorted(r.list_name for r in runs) == sorted(
        ["organisation", "suppliers", "customers", "categories", "tax_rates", "bank_accounts"]
    )
    assert (organisation.name, organisation.base_currency) == (BRIGHT_SMILE, "GBP")
    assert summary["organisation_changed"] is False
    assert {r.status for r in runs} == {"ok"}
    assert connection is not None
    assert connection.last_synced_at is not None
    (event,) = events_for(business.slug, "nomi.sync.finished")
    assert event.payload["status"] == "ok"
    assert event.payload["counts"]["suppliers"]["inserted"] > 0
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    assert any(a.key == f"sync-{business.slug}" for a in artifact)

    again = sync_nomi_reference_data(SyncParams(business=business.slug, app_block=nomi_app))
    counts = again["businesses"][0]["lists"]
    assert all(r["inserted"] == 0 and r["updated"] == 0 for r in counts)


def test_an_incremental_sync_mirrors_a_new_lock_date_and_says_the_organisation_changed(
    use_db: str,
    nomi_app: str,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    business = connect_business(BRIGHT_SMILE)
    params = SyncParams(business=business.slug, lists=["categories"], app_block=nomi_app)
    first = sync_nomi_reference_data(params)
    assert first["businesses"][0]["organisation_changed"] is False
    moved = sandbox.admin.patch(f"/tenants/{business.tenant_id}", json={"lock_date": "2026-06-30"})
    moved.raise_for_status()
    try:
        second = sync_nomi_reference_data(params)
    finally:
        sandbox.admin.patch(f"/tenants/{business.tenant_id}", json={"lock_date": None})

    (summary,) = second["businesses"]
    assert summary["status"] == "ok"
    assert summary["organisation_changed"] is True
    assert summary["organisation_changes"] == [
        {"setting": "lock_date", "before": None, "after": "2026-06-30"}
    ]
    with db_session_for() as s:
        organisation = s.exec(
            select(Organisation).where(Organisation.connection_id == business.connection_id)
        ).one()
        runs = list(
            s.exec(
                select(SyncRun).where(
                    SyncRun.connection_id == business.connection_id,
                    SyncRun.list_name == "organisation",
                )
            )
        )
    assert str(organisation.lock_date) == "2026-06-30"
    assert sorted(r.detail or "" for r in runs) == ["", "lock date none -> 2026-06-30"]


def test_sync_of_all_goes_on_when_one_connection_is_lost(
    use_db: str,
    nomi_app: str,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    healthy = connect_business(BRIGHT_SMILE)
    lost = connect_business(HARBOUR)
    sandbox.fault("refresh_revoked", tenant_id=lost.tenant_id)
    sandbox.fault("token_rejected", tenant_id=lost.tenant_id)

    result = sync_nomi_reference_data(SyncParams(app_block=nomi_app))

    by_slug = {s["business"]: s for s in result["businesses"]}
    assert by_slug[healthy.slug]["status"] == "ok"
    assert by_slug[lost.slug]["status"] == "connection_lost"
    assert len(by_slug[lost.slug]["lists"]) == 1  # stopped after the first refusal
    with db_session_for() as s:
        lost_row = s.get(Connection, lost.connection_id)
        healthy_row = s.get(Connection, healthy.connection_id)
        assert _count(s, Supplier, healthy.connection_id) > 0
    assert lost_row is not None
    assert lost_row.status == ConnectionStatus.EXPIRED
    assert "refused" in (lost_row.last_error or "")
    assert healthy_row is not None
    assert healthy_row.status == ConnectionStatus.CONNECTED
    assert events_for(lost.slug, "nomi.connection.expired")
    assert events_for(healthy.slug, "nomi.sync.finished")
