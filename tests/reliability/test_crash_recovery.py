"""A worker killed with SIGKILL mid-publish, then the deployment run again: nothing lost or doubled.

The auto-publish deployment is served (``python -m deployments.serve``, the same deployment as
``prefect.yaml``) in its own process group against a real ``prefect server start`` (SQLite, with
its background services). The session test harness is an ephemeral server: it runs no
repossessor, so an expired concurrency lease is never given back there and lease recovery cannot
be shown on it. The sandbox delays every expense create, so the run is killed with some items
published and some claimed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.locks import PUBLISH_LOCK_LEASE_SECONDS, publish_lock_name
from connector.publishing.queue import recover_stale
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt
from connector.store.models import Connection, Item
from deployments.automations import ZOMBIE_AFTER_SECONDS, replace_automation, zombie_run_automation
from deployments.local import free_port
from deployments.local import prefect_server as local_prefect_server
from deployments.scale import GroupProcess, start_group
from sandbox.testing import SandboxHandle
from tasks.runtime import NomiLimits, nomi_client
from tests.connector.publishing.correcting import (
    active_records,
    add_admin,
    item_records,
    published,
)
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    duplicates,
    make_ready,
    mirror_lists,
    records,
    write_image,
)
from tests.connector.publishing.test_publishing_world import World as PublishingWorld
from tests.connector.publishing.test_publishing_world import world as world  # the fixture
from tests.deployments.conftest import REPO_ROOT, wait_for
from tests.flows.conftest import ConnectedBusiness
from tests.flows.conftest import connect_business as connect_business
from tests.flows.conftest import connector_db as connector_db
from tests.flows.conftest import nomi_app as nomi_app
from tests.flows.conftest import sandbox as sandbox
from tests.nomi.conftest import consent, make_oauth

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

DEPLOYMENT = "auto-publish-to-nomi/scheduled"
ITEMS = 9
LATENCY_SECONDS = 1.0


@pytest.fixture
def real_server(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A ``prefect server start`` with services (repossessor every second) as this test's API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS", "1")
    with (
        local_prefect_server(tmp_path / "prefect-server", port=free_port(), timeout=180) as url,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        yield url


@pytest.fixture
def serve(
    real_server: str, connector_db: str, tmp_path: Path
) -> Iterator[Callable[[], GroupProcess]]:
    """Start the served auto-publish deployment in its own process group (stopped afterwards)."""
    import os

    started: list[GroupProcess] = []
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")},
        "PREFECT_API_URL": real_server,
        "PREFECT_HOME": str(tmp_path / "serve-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "NOMI_CONNECTOR_DATABASE_URL": connector_db,
        "NOMI_CONNECTOR_HOME": str(tmp_path / "home"),
    }

    def start() -> GroupProcess:
        process = start_group(
            f"serve-{len(started)}",
            [
                sys.executable,
                "-m",
                "deployments.serve",
                "--only",
                "auto-publish-to-nomi",
                "--no-schedules",
            ],
            env=env,
            log_dir=tmp_path / "logs",
            cwd=REPO_ROOT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(grace=10)


def prepare(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> tuple[ConnectedBusiness, list[uuid.UUID], int]:
    """A connected business with ITEMS Ready cost items, every other one with an image."""
    business = connect_business(warn_new_supplier=False, auto_publish=True)
    org = Org(business.tenant_id)
    engine = make_engine(connector_db)
    ids: list[uuid.UUID] = []
    images = 0
    with Session(engine, expire_on_commit=False) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        with nomi_client(
            cast(NomiApp, NomiApp.load(nomi_app)), connection, limits=NomiLimits(per_minute=0)
        ) as nomi:
            mirror_lists(s, nomi, connection.id)
        for n in range(ITEMS):
            extra: dict[str, Any] = {}
            if n % 2 == 0:
                image = write_image(tmp_path / "images")
                extra = {"image_path": str(image), "image_content_type": "application/pdf"}
                images += 1
            ids.append(add_item(s, business.business_id, org, ItemKind.COST, **extra).id)
        s.commit()
        make_ready(s, business.business_id)
    engine.dispose()
    return business, ids, images


def statuses(connector_db: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each item's status, fresh from the database."""
    engine = make_engine(connector_db)
    try:
        with Session(engine) as s:
            rows = s.exec(select(Item.id, Item.status).where(Item.id.in_(ids)))  # type: ignore[attr-defined]
            return {row[0]: str(row[1]) for row in rows}
    finally:
        engine.dispose()


def served(entrypoint: str = "flows.auto_publish_to_nomi.auto_publish_to_nomi") -> bool:
    """The served twin of the deployment exists on the server."""
    from prefect.client.orchestration import get_client

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_deployment_by_name(DEPLOYMENT)

    try:
        return bool(asyncio.run(read()).entrypoint == entrypoint)
    except Exception:
        return False


def run_params(business: ConnectedBusiness, nomi_app: str, **extra: Any) -> dict[str, Any]:
    """Parameters of one auto-publish run for the business (small batches, 2 requests at once)."""
    return {
        "params": {
            "business": business.slug,
            "app_block": nomi_app,
            "batch_size": 3,
            "batch_retry_delay_seconds": 1,
            "limits": {"per_minute": 0, "concurrent": 2},
            **extra,
        }
    }


def lock_slots(slug: str) -> int:
    """Slots taken on the business's publishing lock."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return int(
            client.read_global_concurrency_limit_by_name(publish_lock_name(slug)).active_slots
        )


def waited(
    predicate: Callable[[], object], *, timeout: float, what: str, process: GroupProcess
) -> object:
    """``wait_for`` with the process's log in the failure message."""
    try:
        return wait_for(predicate, timeout=timeout, what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{process.log_tail()}") from None


def test_a_worker_killed_mid_publish_then_run_again_publishes_every_item_exactly_once(
    real_server: str,
    sandbox: SandboxHandle,
    nomi_app: str,
    connector_db: str,
    connect_business: Callable[..., ConnectedBusiness],
    serve: Callable[[], GroupProcess],
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun, StateType
    from prefect.deployments import run_deployment

    sandbox.admin.patch("/settings", json={"per_minute": 0}).raise_for_status()
    replace_automation(zombie_run_automation())  # what ops create once per server
    business, ids, images = prepare(connect_business, nomi_app, connector_db, tmp_path)
    sandbox.fault(
        "latency",
        tenant_id=business.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        params={"seconds": LATENCY_SECONDS},
    )
    worker = serve()
    waited(served, timeout=90, what="the served deployment", process=worker)

    first = run_deployment(DEPLOYMENT, parameters=run_params(business, nomi_app), timeout=0)
    assert isinstance(first, FlowRun)

    def midway() -> dict[uuid.UUID, str] | None:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(first.id).state
        assert state is None or not state.is_final(), f"the run ended before the kill: {state}"
        now = statuses(connector_db, ids)
        published = sum(1 for s in now.values() if s == ItemStatus.PUBLISHED)
        claimed = sum(1 for s in now.values() if s == ItemStatus.PUBLISHING)
        assert published < ITEMS, "the run finished before it could be killed"
        return now if published >= 2 and claimed >= 1 else None

    waited(midway, timeout=120, what="a run half done", process=worker)
    victims = worker.kill()
    killed_at = time.monotonic()
    assert len(victims) >= 1  # the flow-run subprocess died with the serve process
    time.sleep(0.5)
    for pid in [worker.pid, *victims]:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    left = statuses(connector_db, ids)
    stuck = [i for i, s in left.items() if s == ItemStatus.PUBLISHING]
    assert stuck, left
    published_before = sum(1 for s in left.values() if s == ItemStatus.PUBLISHED)
    assert published_before >= 1

    # The dead run stays Running (nobody is left to report it) and holds the deployment's slot,
    # until the zombie automation sees its heartbeats stop and marks it Crashed.
    def run_state() -> Any:
        with get_client(sync_client=True) as client:
            return client.read_flow_run(first.id).state

    assert run_state().type == StateType.RUNNING
    # The business's publishing lock is a 60 s lease: the repossessor frees it soon after.
    wait_for(lambda: lock_slots(business.slug) == 0, timeout=150, what="the dead run's lock lease")
    freed_after = time.monotonic() - killed_at
    assert freed_after < PUBLISH_LOCK_LEASE_SECONDS + 30, freed_after
    # Heartbeats every 30 s, so the last one came at most that long before the kill; 90 s of
    # silence after it, and the automation's next evaluation (every 5 s), mark the run Crashed.
    crashed: Any = wait_for(
        lambda: (state := run_state()).type == StateType.CRASHED and state,
        timeout=ZOMBIE_AFTER_SECONDS + 30,
        what="the zombie automation to mark the dead run Crashed",
    )
    crashed_after = time.monotonic() - killed_at
    assert crashed_after < ZOMBIE_AFTER_SECONDS + 30, crashed_after
    assert f"No heartbeat for {ZOMBIE_AFTER_SECONDS} s" in str(crashed.message), crashed

    sandbox.clear_faults()
    serve()  # the worker comes back
    rerun_started = time.monotonic()
    second = run_deployment(
        DEPLOYMENT,
        parameters=run_params(business, nomi_app, claim_timeout_minutes=0.01),
        timeout=180,
    )
    assert isinstance(second, FlowRun)

    rerun_seconds = time.monotonic() - rerun_started
    assert second.state is not None
    assert second.state.is_completed(), second.state
    final = statuses(connector_db, ids)
    assert set(final.values()) == {ItemStatus.PUBLISHED}, final
    assert len(records(sandbox, business.tenant_id, "expense")) == ITEMS
    assert len(records(sandbox, business.tenant_id, "attachment")) == images
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    engine = make_engine(connector_db)
    with Session(engine) as s:
        recovered = set(
            s.exec(select(PublishAttempt.item_id).where(PublishAttempt.outcome == "recovered"))
        )
    engine.dispose()
    assert recovered == set(stuck)
    print(  # the measured numbers docs/reliability.md quotes
        f"CRASH items={ITEMS} published_before_kill={published_before} stuck={len(stuck)} "
        f"lock_freed_after={freed_after:.1f}s crashed_after={crashed_after:.1f}s "
        f"rerun_seconds={rerun_seconds:.1f}"
    )


# --- a correction killed with SIGKILL between the void and the create -------------------------

#: A process correcting one item (what ``items correct`` / the correct-item flow run), with a
#: static access token (in the environment, never on argv) so it needs no Prefect: argv =
#: database, API, tenant, business id, external id, actor.
CORRECTOR = """
import os, sys, uuid
from sqlmodel import Session
from connector.admin.corrections import correct_item
from connector.store.db import make_engine
from connector.store.models import Business
from nomi.client import NomiClient
from nomi.tokens import StaticTokenProvider
url, api, tenant, business_id, external_id, actor = sys.argv[1:]
token = os.environ["NOMI_TEST_ACCESS_TOKEN"]
with Session(make_engine(url)) as s, NomiClient(api, tenant, StaticTokenProvider(token)) as nomi:
    business = s.get(Business, uuid.UUID(business_id))
    correct_item(s, nomi, business=business, external_id=external_id, actor_email=actor,
                 changes={"category": "493"})
"""
CREATE_LATENCY_SECONDS = 4.0


def test_a_correction_killed_after_the_void_before_the_create_ends_with_one_live_record(
    world: PublishingWorld,
) -> None:
    """The process is SIGKILLed while its create waits in Nomi (which may still land it after
    the kill); the next publish run finishes the correction: one live record, generation 1."""
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)
    item = world.item(item_id)
    tenant = world.org.tenant_id
    world.fault(
        "latency",
        method="POST",
        path="/api/v1/expenses",
        after=1,  # the void goes through; the create after it waits
        count=1,
        params={"seconds": CREATE_LATENCY_SECONDS},
    )
    oauth = make_oauth(world.sandbox)
    code, verifier = consent(world.sandbox, oauth, tenant)
    token = oauth.exchange_code(code, verifier).access_token.get_secret_value()
    oauth.close()
    url = world.engine.url.render_as_string(hide_password=False)
    args = [url, world.sandbox.base_url, tenant, str(world.business_id)]
    process = subprocess.Popen(
        [sys.executable, "-c", CORRECTOR, *args, item.external_id, admin],
        cwd=REPO_ROOT,
        env={**os.environ, "NOMI_TEST_ACCESS_TOKEN": token},
        start_new_session=True,
    )
    try:
        wait_for(lambda: not active_records(world, item_id), timeout=60, what="the void to land")
        time.sleep(1.0)  # the corrector is now waiting on its create
        assert process.poll() is None
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    time.sleep(CREATE_LATENCY_SECONDS)  # the create the dead process sent may land meanwhile
    left = world.item(item_id)
    assert left.status == ItemStatus.PUBLISHING

    with world.session() as s:
        recover_stale(s, older_than=timedelta(0), run_id=uuid.uuid4())
    world.publish(workers=1)

    done = world.item(item_id)
    assert done.status == ItemStatus.PUBLISHED
    assert done.record_generation == 1
    assert done.voided_record_ids == [f"expense:{item.nomi_record_id}"]
    [live] = active_records(world, item_id)
    assert live["id"] == done.nomi_record_id
    assert len(item_records(world, item_id)) == 2
