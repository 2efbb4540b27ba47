"""Exactly once under faults: auto-publish of many items over many businesses while Nomi misbehaves.

The sandbox injects, at a few percent of API requests each: 500/502/503/504 (HTML bodies), 429s
(concurrent, minute, app and day), latency, connection resets and commit-then-drop (the write
lands, the answer is lost). Auto-publish runs like its schedule does (a run that ends Failed or
stopped a business on the daily limit is followed by the next one) until nothing is left.

Then: every Ready item is in Nomi exactly once (no duplicate ``source_id``, one record per item per
organisation), images and payments are where the settings say, new suppliers were created once,
history has a successful attempt per item, and every injected failure on a keyed write was
followed by a request with the same key that succeeded (a client retry or the next attempt).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.rules.vocabulary import ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt
from connector.store.models import Item
from sandbox.testing import SandboxHandle
from tests.connector.publishing.correcting import (
    active_records,
    add_admin,
    correct,
    item_records,
    published,
)
from tests.connector.publishing.test_publishing_world import World as PublishingWorld
from tests.connector.publishing.test_publishing_world import world as world  # the fixture
from tests.flows.conftest import ConnectedBusiness
from tests.flows.conftest import connect_business as connect_business
from tests.flows.conftest import connector_db as connector_db
from tests.flows.conftest import nomi_app as nomi_app
from tests.flows.conftest import sandbox as sandbox
from tests.reliability.conftest import (
    World,
    attempt_keys,
    attempt_outcomes,
    build_world,
    check_exactly_once,
    journal,
    sweep_until_done,
)

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.usefixtures("fast_publishing")

API = "/api/v1"
#: (fault, probability, params): a few percent of API requests each.
RANDOM_FAULTS: list[tuple[str, float, dict[str, object]]] = [
    ("server_error", 0.01, {"status": 500}),
    ("server_error", 0.01, {"status": 502}),
    ("server_error", 0.01, {"status": 503}),
    ("server_error", 0.01, {"status": 504}),
    ("rate_limit_concurrent", 0.03, {}),
    ("connection_reset", 0.02, {}),
    ("commit_then_drop", 0.03, {}),
    ("latency", 0.03, {"seconds": 0.3}),
]
FAILURES = {
    "server_error",
    "rate_limit_concurrent",
    "rate_limit_minute",
    "rate_limit_app",
    "rate_limit_day",
    "connection_reset",
    "commit_then_drop",
}


def arm(sandbox: SandboxHandle, fault: str, **spec: Any) -> None:
    """Switch a fault on for every organisation's API requests."""
    sandbox.fault(fault, **{"path": API, **spec})


def minute_and_app_429s(sandbox: SandboxHandle, count: int = 2) -> None:
    """Answer the next API requests with minute-window and app-window 429s.

    Their ``Retry-After`` runs to the end of the sandbox's current minute, which the client
    honours by sleeping (and holding the organisation's other requests back). The sandbox clock
    is first moved to 3 s before a minute boundary, so the client waits about 3 s instead of up
    to a minute: the test stays fast, the client's behaviour is the same.
    """
    now = time.time() + float(sandbox.admin.get("/clock").json()["offset_seconds"])
    sandbox.admin.post("/clock/advance", json={"seconds": (57.0 - now % 60) % 60})
    arm(sandbox, "rate_limit_minute", count=count)
    arm(sandbox, "rate_limit_app", count=count)


@contextmanager
def bursts_of_429s(
    sandbox: SandboxHandle, database_url: str, after_published: tuple[int, ...]
) -> Iterator[list[int]]:
    """Arm minute/app 429s each time the published count reaches a threshold (mid-run).

    Armed only while publishing is in full swing, so they fire within milliseconds, before the
    sandbox clock (moved to 3 s before a minute boundary) reaches the boundary.
    """
    fired: list[int] = []
    stop = threading.Event()
    engine = make_engine(database_url)

    def published() -> int:
        with Session(engine) as s:
            found = s.exec(
                select(sa.func.count()).select_from(Item).where(Item.status == ItemStatus.PUBLISHED)
            ).one()
        return int(found)

    def watch() -> None:
        for threshold in after_published:
            while published() < threshold:
                if stop.wait(0.05):
                    return
            minute_and_app_429s(sandbox)
            fired.append(threshold)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()


def history_of(database_url: str, entries: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """The attempt rows under the idempotency keys of ``entries`` (for a failure's message)."""
    keys = [str(e["idempotency_key"]) for e in entries]
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            rows = s.exec(
                select(PublishAttempt.idempotency_key, PublishAttempt.step, PublishAttempt.outcome)
                .where(col(PublishAttempt.idempotency_key).in_(keys))
                .order_by(col(PublishAttempt.at))
            ).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def publish_under_faults(
    sandbox: SandboxHandle,
    nomi_app: str,
    connector_db: str,
    worlds: list[World],
) -> None:
    """Inject every fault, sweep until done, then check exactly-once and the history trail."""
    sandbox.admin.post("/reset-stats").raise_for_status()
    for fault, probability, params in RANDOM_FAULTS:
        arm(sandbox, fault, probability=probability, params=params)
    arm(sandbox, "rate_limit_day", probability=0.02, count=2)
    items = sum(len(w.all_ids) for w in worlds)
    with bursts_of_429s(sandbox, connector_db, (items // 20, items // 3)):
        sweeps = sweep_until_done(nomi_app, connector_db, worlds, max_runs=6)
    sandbox.clear_faults()

    seen = journal(sandbox)
    injected = Counter(e["fault"] for e in seen if e["fault"])
    logger.info(
        "%d items, %d businesses: %d requests, faults %s, %d runs (%d failed), %.1f s, attempts %s",
        items,
        len(worlds),
        len(seen),
        dict(injected),
        len(sweeps.summaries) + sweeps.failed_runs,
        sweeps.failed_runs,
        sweeps.seconds,
        attempt_outcomes(connector_db),
    )
    check_exactly_once(sandbox, connector_db, worlds)
    for name in FAILURES:
        assert injected[name] > 0, f"no {name} was injected: the test proves nothing about it"

    # Every injected failure on a keyed write was followed by the same key succeeding, or by a
    # look-up by source_id that found what a dropped answer under that key had created (the
    # client's retries of it all failed; the next attempt recovered the record instead of posting).
    landed = {e["idempotency_key"] for e in seen if e["fault"] == "commit_then_drop"}
    recovered = attempt_keys(connector_db, ("recovered",))
    succeeded_later: set[str] = landed & recovered
    unresolved: list[dict[str, object]] = []
    for entry in reversed(seen):
        key = entry["idempotency_key"]
        if not key:
            continue
        status = entry["status"] or 0
        ok = entry["fault"] in (None, "latency") and 200 <= status < 300
        if entry["fault"] in FAILURES and key not in succeeded_later:
            unresolved.append(entry)
        if ok:
            succeeded_later.add(key)
    assert not unresolved, (unresolved[:5], history_of(connector_db, unresolved[:5]))
    # The failures the client gave up on are in history as transient/unknown attempts.
    keyed_failures = {e["idempotency_key"] for e in seen if e["fault"] in FAILURES}
    gave_up = attempt_keys(connector_db, ("transient", "unknown"))
    assert gave_up <= keyed_failures | {None}
    outcomes = attempt_outcomes(connector_db)
    assert sum(outcomes.values()) >= items


def test_two_hundred_items_over_four_businesses_publish_exactly_once_under_every_fault(
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
        businesses=4,
        items_per_business=50,
    )
    publish_under_faults(sandbox, nomi_app, connector_db, worlds)


@pytest.mark.slow
def test_two_thousand_items_over_ten_businesses_publish_exactly_once_under_every_fault(
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    world_folder: Path,
) -> None:
    started = time.monotonic()
    worlds = build_world(
        sandbox,
        connect_business,
        nomi_app,
        connector_db,
        world_folder,
        businesses=10,
        items_per_business=200,
    )
    logger.info("world of 2,000 items built in %.1f s", time.monotonic() - started)
    publish_under_faults(sandbox, nomi_app, connector_db, worlds)


# --- corrections: every fault on the void and on the new create -------------------------------

#: (fault, params) the sandbox injects once on a correction's write.
CORRECTION_FAULTS = [
    pytest.param("server_error", {"status": 500}, id="500"),
    pytest.param("server_error", {"status": 502}, id="502"),
    pytest.param("server_error", {"status": 503}, id="503"),
    pytest.param("server_error", {"status": 504}, id="504"),
    pytest.param("connection_reset", {}, id="reset"),
    pytest.param("commit_then_drop", {}, id="commit-then-drop"),
    pytest.param("rate_limit_concurrent", {}, id="429-concurrent"),
    pytest.param("rate_limit_minute", {}, id="429-minute"),
    pytest.param("latency", {"seconds": 0.3}, id="latency"),
]
#: Where the fault fires: the void (``/expenses/{id}/void``) or the create after it.
CORRECTION_WRITES = [
    pytest.param({"path": f"{API}/expenses/"}, id="void"),
    pytest.param({"path": f"{API}/expenses", "after": 1}, id="create"),
]


@pytest.mark.parametrize(("fault", "params"), CORRECTION_FAULTS)
@pytest.mark.parametrize("where", CORRECTION_WRITES)
def test_a_correction_under_a_fault_leaves_one_live_record(
    world: PublishingWorld, fault: str, params: dict[str, Any], where: dict[str, Any]
) -> None:
    """Each write fails its first time (several times: the client's retries too); the
    correction ends with one live record, given back to the next publish run when it must."""
    admin = add_admin(world)
    item_id = published(world, "cost")
    old = world.item(item_id).nomi_record_id
    world.fault(fault, method="POST", count=5, params=params, **where)

    result = correct(world, item_id, admin, {"category": "493"})
    for _ in range(5):  # what the next auto-publish runs do with a given-back correction
        if world.item(item_id).status == ItemStatus.PUBLISHED:
            break
        world.sandbox.admin.delete("/faults")
        world.publish(workers=1)

    item = world.item(item_id)
    assert result.outcome in {"published", "given_back"}
    assert item.status == ItemStatus.PUBLISHED
    assert item.record_generation == 1
    assert item.voided_record_ids == [f"expense:{old}"]
    [live] = active_records(world, item_id)
    assert live["id"] == item.nomi_record_id
    assert len(item_records(world, item_id)) == 2
