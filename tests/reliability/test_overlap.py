"""Overlapping publish runs: two sweeps started together, and a scheduled run arriving mid-run.

Runs overlap in production when a sweep is started by hand while the 5-minute schedule fires,
or when a sweep takes longer than 5 minutes. The per-business global concurrency limit
(``nomi-publish-<slug>``) lets one run work on a business at a time; the other waits or skips it,
and the claims make sure no item is published twice or left behind either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.history import records as history
from connector.rules.vocabulary import ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishRun
from connector.store.models import Item
from flows.auto_publish_to_nomi import PublishSummary, auto_publish_to_nomi
from sandbox.testing import SandboxHandle
from tests.flows.conftest import ConnectedBusiness
from tests.flows.conftest import connect_business as connect_business
from tests.flows.conftest import connector_db as connector_db
from tests.flows.conftest import nomi_app as nomi_app
from tests.flows.conftest import sandbox as sandbox
from tests.reliability.conftest import (
    auto_eligible_left,
    build_world,
    check_exactly_once,
    run_params,
)

pytestmark = pytest.mark.usefixtures("fast_publishing")


def published_rows(connector_db: str, summary: PublishSummary) -> set[str]:
    """Ids of the items a run published, from its durable attempt rows (its result lists only
    the items that were not simply published)."""
    engine = make_engine(connector_db)
    try:
        with Session(engine) as session:
            return {
                str(item_id)
                for business in summary.businesses.values()
                for item_id in history.published_in_run(session, business.run_id)
            }
    finally:
        engine.dispose()


def test_two_sweeps_started_together_publish_every_item_of_every_business_once(
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    world_folder: Path,
) -> None:
    worlds = build_world(
        sandbox,
        connect_business,
        nomi_app,
        connector_db,
        world_folder,
        businesses=3,
        items_per_business=30,
        prefix="Overlap",
    )
    for fault, probability in (("commit_then_drop", 0.05), ("latency", 0.1)):
        sandbox.fault(fault, path="/api/v1", probability=probability, params={"seconds": 0.2})
    results: list[PublishSummary | BaseException] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        try:
            start.wait(timeout=30)
            # Long enough to wait for the other run to finish a business rather than skip it.
            results.append(auto_publish_to_nomi(run_params(nomi_app, lock_wait_seconds=120)))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert len(results) == 2
    assert all(isinstance(r, PublishSummary) for r in results), results
    first, second = (r for r in results if isinstance(r, PublishSummary))
    both = published_rows(connector_db, first) & published_rows(connector_db, second)
    assert not both, "an item published by both runs"
    total = sum(len(w.all_ids) for w in worlds)
    assert first.published + second.published == total
    assert auto_eligible_left(connector_db, worlds) == 0, "an item was skipped by both runs"
    check_exactly_once(sandbox, connector_db, worlds)


@pytest.mark.slow
def test_a_scheduled_run_arriving_while_the_last_still_runs_skips_the_business_and_loses_nothing(
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    world_folder: Path,
) -> None:
    [world] = build_world(
        sandbox,
        connect_business,
        nomi_app,
        connector_db,
        world_folder,
        businesses=1,
        items_per_business=40,
        prefix="Schedule",
    )
    # Every write takes 1 s: with 5 in flight, the first run needs well over the 2 s the next
    # one waits for the business, whenever that one arrives.
    sandbox.fault("latency", method="POST", path="/api/v1", params={"seconds": 1.0})
    slug = world.business.slug
    first: list[PublishSummary | BaseException] = []

    def long_run() -> None:
        try:
            first.append(auto_publish_to_nomi(run_params(nomi_app, batch_size=5)))
        except BaseException as exc:  # reported by the assertion below
            first.append(exc)

    thread = threading.Thread(target=long_run)
    thread.start()
    engine = make_engine(connector_db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Session(engine) as s:
            done = s.exec(
                select(Item.id).where(
                    Item.business_id == world.business.business_id,
                    Item.status == ItemStatus.PUBLISHED,
                )
            ).all()
        if len(done) >= 3:
            break
        time.sleep(0.1)
    # The schedule fires: default parameters (waits 2 s for the business, then skips it).
    arriving = auto_publish_to_nomi(run_params(nomi_app))
    thread.join(timeout=300)

    assert arriving.businesses[slug].skipped == "another run is publishing this business"
    assert arriving.published == 0
    assert first
    assert isinstance(first[0], PublishSummary), first
    assert first[0].published == len(world.all_ids)
    with Session(engine) as s:
        runs = s.exec(
            select(PublishRun).where(PublishRun.business_id == world.business.business_id)
        )
        by_published = sorted((r.published, r.skipped) for r in runs)
    engine.dispose()
    assert by_published == [(0, 1), (len(world.all_ids), 0)]
    # The next scheduled run finds nothing left.
    assert auto_publish_to_nomi(run_params(nomi_app)).published == 0
    check_exactly_once(sandbox, connector_db, [world])


@pytest.mark.slow
def test_on_ready_runs_overlapping_the_sweep_wait_for_it_and_publish_each_item_once(
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    world_folder: Path,
) -> None:
    """Runs the on-ready trigger starts (its parameters: every business, a watch past the
    event, a long lock wait) arriving while the sweep publishes the business: they wait for its
    lock, then take what is left; nothing is published twice or left behind."""
    [world] = build_world(
        sandbox,
        connect_business,
        nomi_app,
        connector_db,
        world_folder,
        businesses=1,
        items_per_business=30,
        prefix="OnReady",
    )
    sandbox.fault("latency", method="POST", path="/api/v1", params={"seconds": 0.3})
    slug = world.business.slug
    results: list[PublishSummary | BaseException] = []

    def run(**values: object) -> None:
        try:
            results.append(auto_publish_to_nomi(run_params(nomi_app, **values)))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run, kwargs={"batch_size": 5, "lock_wait_seconds": 120})]
    threads[0].start()
    engine = make_engine(connector_db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Session(engine) as s:
            done = s.exec(
                select(Item.id).where(
                    Item.business_id == world.business.business_id,
                    Item.status == ItemStatus.PUBLISHED,
                )
            ).all()
        if len(done) >= 3:
            break
        time.sleep(0.1)
    engine.dispose()
    on_ready = {"settle_seconds": 1, "lock_wait_seconds": 120}
    for _ in range(3):  # events of three windows, their runs all waiting on the sweep
        event_at = datetime.now(UTC).isoformat()
        threads.append(threading.Thread(target=run, kwargs=on_ready | {"ready_event_at": event_at}))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=300)

    assert len(results) == 4
    summaries = [r for r in results if isinstance(r, PublishSummary)]
    assert len(summaries) == 4, results
    seen: set[str] = set()
    for summary in summaries:
        rows = published_rows(connector_db, summary)
        assert not rows & seen, "an item published by two runs"
        seen |= rows
    assert sum(s.published for s in summaries) == len(world.all_ids)
    assert all(slug not in s.businesses or not s.businesses[slug].skipped for s in summaries)
    assert auto_eligible_left(connector_db, [world]) == 0
    check_exactly_once(sandbox, connector_db, [world])
