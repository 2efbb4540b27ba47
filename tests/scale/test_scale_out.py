"""Scale-out on Prefect's own machinery: PostgreSQL + Redis, two API servers, two process workers.

A fresh Prefect database and a fresh connector database on the local PostgreSQL, two unused Redis
databases; ``deployments.scale.prefect_cluster`` starts two ``--no-services`` API servers and one
services process; auto-publish is deployed into a process work pool served by two workers (each
talking to a different API server); one run per business is started at once. Every item must be
published exactly once, every run Completed, and both workers must have run flow runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa
from sqlmodel import Session, select

from blocks.app import NomiApp
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine, migrate
from connector.store.models import Connection, Item
from deployments.scale import Cluster, ScaleSettings, prefect_cluster
from sandbox.testing import SandboxHandle
from tasks.runtime import NomiLimits, nomi_client
from tests.conftest import POSTGRES_ADMIN_URL
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    duplicates,
    make_ready,
    mirror_lists,
    records,
    write_image,
)
from tests.deployments.conftest import REPO_ROOT, wait_for
from tests.flows.conftest import ACCOUNTANT_EMAIL, ConnectedBusiness
from tests.flows.conftest import connect_business as connect_business
from tests.flows.conftest import nomi_app as nomi_app
from tests.flows.conftest import sandbox as sandbox

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.prefect]

BUSINESSES = 6
ITEMS_PER_BUSINESS = 10
WORKER_LIMIT = 3
POOL = "nomi-scale"
DEPLOYMENT_NAME = "per-business"


def _admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def prefect_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Prefect (asyncpg URL), dropped afterwards."""
    name = f"nomi_prefect_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("+psycopg", "+asyncpg", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_urls() -> Iterator[tuple[str, str]]:
    """Two empty Redis databases (messaging, docket) on the local server, flushed afterwards."""
    free: list[int] = []
    for db in range(15, 1, -1):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        try:
            if client.dbsize() == 0:
                free.append(db)
        finally:
            client.close()
        if len(free) == 2:
            break
    assert len(free) == 2, "no two empty Redis databases on 127.0.0.1:6379"
    try:
        yield tuple(f"redis://127.0.0.1:6379/{db}" for db in free)  # type: ignore[misc]
    finally:
        for db in free:
            client = redis.Redis(host="127.0.0.1", port=6379, db=db)
            client.flushdb()
            client.close()


@pytest.fixture
def cluster(
    prefect_server: None, prefect_database: str, redis_urls: tuple[str, str], tmp_path: Path
) -> Iterator[Cluster]:
    """Two API servers and a services process; this test's Prefect API is the first server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = ScaleSettings(
        database_url=prefect_database,
        redis_url=redis_urls[0],
        docket_url=redis_urls[1],
        home=tmp_path / "prefect",
    )
    with prefect_cluster(settings, api_servers=2) as running:
        with temporary_settings(updates={PREFECT_API_URL: running.api_urls[0]}):
            yield running
        from deployments.local import drain_prefect_workers

        drain_prefect_workers()


@pytest.fixture
def connector_db(postgres_url: str) -> str:
    """The connector's database on PostgreSQL (overrides the flow tests' SQLite file)."""
    engine = make_engine(postgres_url)
    migrate(engine)
    engine.dispose()
    return postgres_url


def add_businesses(
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    images: Path,
) -> list[ConnectedBusiness]:
    """BUSINESSES new organisations, each connected, its lists mirrored, items Ready."""
    app = cast(NomiApp, NomiApp.load(nomi_app))
    engine = make_engine(connector_db)
    businesses: list[ConnectedBusiness] = []
    for n in range(BUSINESSES):
        name = f"Scale Test Org {n} {uuid.uuid4().hex[:4]}"
        sandbox.admin.post(
            "/tenants", json={"name": name, "grant_to": [ACCOUNTANT_EMAIL]}
        ).raise_for_status()
        business = connect_business(name, auto_publish=True, warn_new_supplier=False)
        org = Org(business.tenant_id)
        with Session(engine, expire_on_commit=False) as s:
            connection = s.get(Connection, business.connection_id)
            assert connection is not None
            with nomi_client(app, connection, limits=NomiLimits(per_minute=0)) as nomi:
                mirror_lists(s, nomi, connection.id)
            for i in range(ITEMS_PER_BUSINESS):
                extra: dict[str, Any] = {}
                if i % 2 == 0:
                    image = write_image(images)
                    extra = {"image_path": str(image), "image_content_type": "application/pdf"}
                add_item(s, business.business_id, org, ItemKind.COST, **extra)
            s.commit()
            make_ready(s, business.business_id)
        businesses.append(business)
    engine.dispose()
    return businesses


def deploy_per_business(pool: str) -> None:
    """Deploy the ``per-business`` entry of ``prefect.yaml`` into the process pool.

    The scheduled deployment allows one run at a time (``CANCEL_NEW``); runs fanned out per
    business use this one, which has no deployment-wide limit, and the per-business publishing
    lock still keeps two runs off one business.
    """
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from deployments.serve import load_specs

    (spec,) = [s for s in load_specs() if s.name == DEPLOYMENT_NAME]
    assert spec.concurrency_limit is None
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
    source = flow.from_source(source=str(REPO_ROOT), entrypoint=spec.entrypoint)
    source.deploy(  # type: ignore[union-attr]
        name=spec.name,
        description=spec.description,
        tags=spec.tags,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )


def test_two_workers_on_a_postgres_redis_prefect_publish_many_businesses_exactly_once(
    cluster: Cluster,
    sandbox: SandboxHandle,
    nomi_app: str,
    connector_db: str,
    connect_business: Callable[..., ConnectedBusiness],
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    sandbox.admin.patch("/settings", json={"per_minute": 0}).raise_for_status()
    businesses = add_businesses(sandbox, connect_business, nomi_app, connector_db, tmp_path / "img")
    deploy_per_business(POOL)
    worker_env = {
        "NOMI_CONNECTOR_DATABASE_URL": connector_db,
        "NOMI_CONNECTOR_HOME": str(tmp_path / "home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    for number, name in enumerate(("worker-a", "worker-b")):
        cluster.start_worker(
            POOL, name, limit=WORKER_LIMIT, server=number, cwd=REPO_ROOT, env=worker_env
        )

    def start(business: ConnectedBusiness) -> FlowRun:
        run = run_deployment(
            f"auto-publish-to-nomi/{DEPLOYMENT_NAME}",
            parameters={
                "params": {
                    "business": business.slug,
                    "app_block": nomi_app,
                    "limits": {"per_minute": 0, "concurrent": 5},
                }
            },
            timeout=0,
        )
        assert isinstance(run, FlowRun)
        return run

    started = time.monotonic()
    runs = [start(b) for b in businesses]

    def finished() -> list[Any] | None:
        with get_client(sync_client=True) as client:
            now = [client.read_flow_run(r.id) for r in runs]
        return now if all(r.state is not None and r.state.is_final() for r in now) else None

    try:
        done = wait_for(finished, timeout=420, what="every per-business run to finish")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.logs()}") from None
    elapsed = time.monotonic() - started

    assert isinstance(done, list)
    assert all(r.state.is_completed() for r in done), [(r.name, r.state) for r in done]
    workers = {r.labels.get("prefect.worker.name") for r in done}
    assert workers == {"worker-a", "worker-b"}, workers
    engine = make_engine(connector_db)
    with Session(engine) as s:
        items = list(s.exec(select(Item)))
    engine.dispose()
    assert len(items) == BUSINESSES * ITEMS_PER_BUSINESS
    assert {i.status for i in items} == {ItemStatus.PUBLISHED}
    for business in businesses:
        assert len(records(sandbox, business.tenant_id, "expense")) == ITEMS_PER_BUSINESS
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    print(  # the measured numbers docs/scaling.md quotes
        f"SCALE businesses={BUSINESSES} items={len(items)} workers=2 limit={WORKER_LIMIT} "
        f"seconds={elapsed:.1f} items_per_second={len(items) / elapsed:.2f}"
    )
