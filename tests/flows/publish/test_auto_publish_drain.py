"""auto-publish-to-nomi drains a business before giving its lock back, and an on-ready run
watches its business until its window closed: items that turn Ready while a run holds the
business are published by that run, not left to the next event's run or the sweep."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

import tasks.publish
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from flows.auto_publish_to_nomi import PublishSummary, auto_publish_to_nomi
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    duplicates,
    engine_items,
    make_ready,
    records,
)
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import params, prepare

pytestmark = pytest.mark.usefixtures("fast_world")


def add_ready_costs(connector_db: str, business: ConnectedBusiness, count: int) -> None:
    """``count`` new cost items of the business, assessed Ready and committed."""
    engine = make_engine(connector_db)
    with Session(engine, expire_on_commit=False) as s:
        for _ in range(count):
            add_item(
                s,
                business.business_id,
                Org(business.tenant_id),
                ItemKind.COST,
                contact_name="Staples UK",
            )
        s.commit()
        make_ready(s, business.business_id)
    engine.dispose()


def statuses(connector_db: str, business: ConnectedBusiness) -> list[str]:
    engine = make_engine(connector_db)
    found = [i.status for i in engine_items(engine, business.business_id)]
    engine.dispose()
    return found


def test_items_turning_ready_during_a_batch_are_published_by_the_same_run(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first batch took every candidate it selected (3 of at most 5), so without the drain
    the business would get no further batch; two items turned Ready after that selection."""
    business, _ = prepare(
        connect_business,
        nomi_app,
        connector_db,
        BRIGHT_SMILE,
        tmp_path,
        costs=3,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    real_claim = tasks.publish.claim_next
    calls: list[int] = []

    def claim_after_new_items_turned_ready(*args: Any, **kwargs: Any) -> Any:
        if not calls:  # the first batch selected its candidates already
            add_ready_costs(connector_db, business, 2)
        calls.append(1)
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(tasks.publish, "claim_next", claim_after_new_items_turned_ready)

    summary = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))

    assert isinstance(summary, PublishSummary)
    assert len(calls) >= 2  # a second batch ran
    assert summary.published == 5
    assert statuses(connector_db, business) == [ItemStatus.PUBLISHED] * 5
    assert len(records(sandbox, business.tenant_id, "expense")) == 5
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}


def test_an_on_ready_run_publishes_at_once_then_what_turns_ready_in_its_window(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """The run publishes the first items before its window closed (it does not sleep first),
    and items that turn Ready after that, inside the window, are published by the same run."""
    business, _ = prepare(
        connect_business,
        nomi_app,
        connector_db,
        BRIGHT_SMILE,
        tmp_path,
        costs=2,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    results: list[PublishSummary] = []
    on_ready = params(
        app_block=nomi_app,
        business=business.slug,
        ready_event_at=datetime.now(UTC).isoformat(),
        settle_seconds=20,
        lock_wait_seconds=60,
    )
    run = threading.Thread(target=lambda: results.append(auto_publish_to_nomi(on_ready)))
    run.start()
    deadline = time.monotonic() + 60
    while statuses(connector_db, business) != [ItemStatus.PUBLISHED] * 2:
        assert run.is_alive(), "the run ended before its window closed"
        assert time.monotonic() < deadline, statuses(connector_db, business)
        time.sleep(0.2)
    assert run.is_alive()  # the first items are out, the run still watches its window
    add_ready_costs(connector_db, business, 3)
    run.join(timeout=120)

    assert not run.is_alive()
    (summary,) = results
    assert summary.published == 5
    assert summary.businesses[business.slug].batches >= 2
    assert statuses(connector_db, business) == [ItemStatus.PUBLISHED] * 5
    sources = [str(r.get("source_id")) for r in records(sandbox, business.tenant_id, "expense")]
    assert len(sources) == len(set(sources)) == 5
    assert all(uuid.UUID(s) for s in sources)
