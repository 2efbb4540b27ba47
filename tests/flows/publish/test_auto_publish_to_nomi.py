"""auto-publish-to-nomi against the sandbox over real HTTP: once only, under faults and overlap."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from blocks.tokens import forget_cached_credentials
from connector.rules.vocabulary import ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt, PublishRun
from connector.store.models import Connection
from flows.auto_publish_to_nomi import PublishSummary, auto_publish_to_nomi
from sandbox.seed import BRIGHT_SMILE, HARBOUR
from sandbox.testing import SandboxHandle
from tasks.publish import ItemRow
from tasks.record import BusinessSummary
from tests.connector.publishing.test_publishing_world import (
    duplicates,
    engine_items,
    records,
)
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import params, prepare, reconsent

# The flows read this test's database, with no per-minute limit and fresh client throttles.
pytestmark = pytest.mark.usefixtures("fast_world")


def test_auto_publish_publishes_every_ready_item_once_across_two_businesses_under_faults(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    worlds = [
        prepare(
            connect_business,
            nomi_app,
            connector_db,
            org,
            tmp_path,
            costs=8,
            sales=4,
            claims=2,
            auto_publish=True,
        )
        for org in (BRIGHT_SMILE, HARBOUR)
    ]
    for business, _ in worlds:
        for name, extra in (
            ("server_error", {"params": {"status": 503}}),
            ("rate_limit_concurrent", {}),
            ("commit_then_drop", {}),
        ):
            sandbox.fault(
                name, tenant_id=business.tenant_id, method="POST", probability=0.08, **extra
            )

    summary = auto_publish_to_nomi(params(app_block=nomi_app))

    assert isinstance(summary, PublishSummary)
    assert summary.published == 24
    # The result names only what was not simply published (the 24 are in history).
    assert all(r.needs_attention for b in summary.businesses.values() for r in b.rows)
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    engine = make_engine(connector_db)
    for business, ids in worlds:
        assert len(records(sandbox, business.tenant_id, "expense")) == 8
        assert len(records(sandbox, business.tenant_id, "sales_invoice")) == 4
        assert len(records(sandbox, business.tenant_id, "payment")) == 2
        assert len(records(sandbox, business.tenant_id, "attachment")) == 4
        by_id = {i.id: i for i in engine_items(engine, business.business_id)}
        for item_id in ids["cost"] + ids["sales"]:
            assert by_id[item_id].status == ItemStatus.PUBLISHED
        # Auto-publish covers cost and sales items only: expense claims wait to be published.
        for item_id in ids["expense_claim"]:
            assert by_id[item_id].status == ItemStatus.READY
        assert summary.businesses[business.slug].published == 12
        # 12 auto-published items in batches of 5: 5, 5, then 2, and no fourth batch (the third
        # took every Ready item it found, so another would find nothing).
        assert summary.businesses[business.slug].batches == 3
    with Session(engine) as s:
        runs = s.exec(select(PublishRun)).all()
    assert sorted(r.published for r in runs) == [12, 12]


def test_two_runs_started_together_publish_everything_once(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        HARBOUR,
        tmp_path,
        costs=10,
        sales=4,
        claims=0,
        auto_publish=True,
    )
    results: list[PublishSummary | BaseException] = []

    def run() -> None:
        try:
            results.append(auto_publish_to_nomi(params(app_block=nomi_app, lock_wait_seconds=0.5)))
        except BaseException as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert all(isinstance(r, PublishSummary) for r in results), results
    published = sum(r.published for r in results if isinstance(r, PublishSummary))
    assert published == 14
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    assert len(records(sandbox, business.tenant_id, "expense")) == 10
    assert len(records(sandbox, business.tenant_id, "sales_invoice")) == 4
    engine = make_engine(connector_db)
    statuses = {i.status for i in engine_items(engine, business.business_id)}
    assert statuses == {ItemStatus.PUBLISHED}


def test_connection_lost_stops_the_business_and_reconnect_publishes_what_waited(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        HARBOUR,
        tmp_path,
        costs=3,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    sandbox.fault("consent_expired", tenant_id=business.tenant_id, count=1)

    first = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))

    assert first.published == 0
    assert first.businesses[business.slug].stopped == "connection_lost"
    engine = make_engine(connector_db)
    items = engine_items(engine, business.business_id)
    assert {(i.status, i.last_error_code) for i in items} == {
        (ItemStatus.READY, "connection_expired")
    }
    reconsent(nomi_app, business)
    with Session(engine) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        assert connection.status == "expired"
        # What the reconnect flow does once consent is given again; auto-publish is now off.
        connection.status = "connected"
        s.add(connection)
        s.commit()
    from tests.connector.publishing.test_publishing_world import set_settings

    with Session(engine) as s:
        set_settings(s, business.connection_id, auto_publish=False)

    skipped = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))
    assert skipped.published == 0
    again = auto_publish_to_nomi(
        params(app_block=nomi_app, business=business.slug, after_reconnect=True)
    )

    assert again.published == 3
    assert len(records(sandbox, business.tenant_id, "expense")) == 3


def test_a_business_gets_its_next_batch_without_waiting_for_a_slower_business(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """Batches are not rounds: a slow batch of one business holds up no other business."""
    slow, _ = prepare(
        connect_business, nomi_app, connector_db, BRIGHT_SMILE, tmp_path, costs=1, sales=0,
        claims=0, auto_publish=True,
    )  # fmt: skip
    fast, _ = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=6, sales=0,
        claims=0, auto_publish=True,
    )  # fmt: skip
    sandbox.fault(
        "latency",
        tenant_id=slow.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        count=1,
        params={"seconds": 3.0},
    )

    summary = auto_publish_to_nomi(params(app_block=nomi_app, batch_size=2))

    assert summary.businesses[fast.slug].batches == 3
    assert summary.businesses[fast.slug].published == 6
    assert summary.businesses[slow.slug].published == 1
    engine = make_engine(connector_db)
    with Session(engine) as s:
        attempts = s.exec(select(PublishAttempt)).all()
    engine.dispose()
    slow_created = min(a.at for a in attempts if a.business_id == slow.business_id)
    fast_done = max(a.at for a in attempts if a.business_id == fast.business_id)
    # All three batches of the fast business ended while the slow one's first write hung (in
    # rounds its second batch would have waited for the slow batch).
    assert fast_done < slow_created


def test_publishing_threads_open_no_prefect_client(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch task loads the credentials block in its own thread (with the run's client).

    A publishing thread has no Prefect client of its own: a block read there opens a new one
    (~65 ms of CPU each, mostly the CA bundle), once per business and batch.
    """
    from prefect.client.orchestration import SyncPrefectClient

    businesses = [
        prepare(
            connect_business, nomi_app, connector_db, org, tmp_path, costs=3, sales=0, claims=0,
            auto_publish=True,
        )[0]
        for org in (BRIGHT_SMILE, HARBOUR)
    ]  # fmt: skip
    for business in businesses:  # as in a fresh worker process
        forget_cached_credentials(business.credentials_block)
    opened: list[str] = []
    real_init = SyncPrefectClient.__init__

    def spy(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> None:
        opened.append(threading.current_thread().name)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", spy)

    summary = auto_publish_to_nomi(params(app_block=nomi_app))

    assert summary.published == 6
    assert not [name for name in opened if name.startswith("nomi-publish")], opened


def test_the_returned_summary_keeps_every_total_and_the_rows_needing_attention() -> None:
    rows = [
        ItemRow(item_id=uuid.uuid4(), outcome="published"),
        ItemRow(item_id=uuid.uuid4(), outcome="published", image_error="too large"),
        ItemRow(item_id=uuid.uuid4(), outcome="held", message="no category"),
        ItemRow(item_id=uuid.uuid4(), outcome="rejected", error_code="LOCK_DATE"),
    ]
    business = BusinessSummary(business="b", run_id=uuid.uuid4(), published=2, held=1, rows=rows)
    summary = PublishSummary(trigger="person", businesses={"b": business})

    returned = summary.needing_attention()

    assert returned.businesses["b"].rows == rows[1:]
    assert (returned.published, returned.businesses["b"].held) == (2, 1)
    assert summary.businesses["b"].rows == rows  # the run's own summary is left as it was
