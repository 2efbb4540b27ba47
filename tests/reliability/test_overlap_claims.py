"""Overlap without the Prefect lock: four workers publish one business's batches at the same time.

The global concurrency limit keeps two flow runs off one business, but if it were missing, lost or
its lease expired, the claims alone must keep overlapping batches apart. Four threads run the
publish-batch task (``.fn``) for the same business, each under its own run id, on SQLite (BEGIN
IMMEDIATE) and PostgreSQL (SKIP LOCKED): every item is published by exactly one of them, and none
is left Ready.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from prefect.logging import disable_run_logger

from blocks.app import NomiApp
from connector.publishing.queue import Selection
from connector.store.db import make_engine, migrate
from sandbox.testing import SandboxHandle
from tasks.publish import publish_next_batch
from tests.flows.conftest import ConnectedBusiness
from tests.flows.conftest import connect_business as connect_business
from tests.flows.conftest import nomi_app as nomi_app
from tests.flows.conftest import sandbox as sandbox
from tests.reliability.conftest import (
    LIMITS,
    World,
    auto_eligible_left,
    build_world,
    check_exactly_once,
)

pytestmark = pytest.mark.usefixtures("fast_publishing")
WORKERS = 4


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def connector_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated connector database: a SQLite file, then the local PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/connector.db"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def work(url: str, app: NomiApp, world: World, published: list[str]) -> None:
    """Publish batches of the business until no item is left Ready (one run id).

    A batch whose candidates were all claimed by the others comes back empty; the worker then
    tries again (as the next sweep would) while Ready items remain.
    """
    run_id = uuid.uuid4()
    handled: list[uuid.UUID] = []
    deadline = time.monotonic() + 120
    for batch_no in itertools.count(1):
        assert time.monotonic() < deadline, "the workers did not finish"
        batch = publish_next_batch.fn(
            url,
            app,
            business_id=world.business.business_id,
            slug=world.business.slug,
            run_id=run_id,
            batch_no=batch_no,
            batch_size=4,
            limits=LIMITS,
            selection=Selection(),
            exclude=handled,
        )
        if not batch.claimed:
            if auto_eligible_left(url, [world]) == 0:
                return
            time.sleep(0.05)
            continue
        handled.extend(row.item_id for row in batch.rows)
        published.extend(str(r.item_id) for r in batch.rows if r.outcome == "published")


def test_four_workers_on_one_business_without_the_lock_publish_each_item_once(
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
        prefix="Claims",
    )
    # Slow writes a little so the workers' batches interleave.
    sandbox.fault("latency", method="POST", path="/api/v1", params={"seconds": 0.05})
    app = cast(NomiApp, NomiApp.load(nomi_app))
    per_worker: list[list[str]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []

    def run(published: list[str]) -> None:
        try:
            work(connector_db, app, world, published)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in per_worker]
    # The run loggers' "disabled" flag is process-wide: set it once around all workers.
    with disable_run_logger():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

    assert not errors, errors
    everything = [i for published in per_worker for i in published]
    assert len(everything) == len(set(everything)) == len(world.all_ids)
    assert sum(1 for p in per_worker if p) >= 2, "the workers did not overlap"
    assert auto_eligible_left(connector_db, [world]) == 0
    check_exactly_once(sandbox, connector_db, [world])
