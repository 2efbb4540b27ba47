"""Benchmark: seconds from an item becoming Ready to its Nomi record, on the served on-ready path.

A Prefect server (triggers and actions services running), ``deployments.serve`` serving
auto-publish-to-nomi without schedules (no sweep), 20 businesses with auto-publish on. Items
become Ready at a steady rate, a few at a time, round the businesses; each batch is committed and
then announced with ``tasks.events.emit_items_ready`` (what the glue calls after an import). The
latency of an item is its Nomi record's creation time (the sandbox's, falling back to our
``published_at``) minus its ``ready_at``.

Prints ``BENCH ready-to-nomi ratio=<p95 seconds> target=30(at-most)`` with p50, max, the runs the
trigger started, the events sent, each run stage's p50/p95 seconds (``_stages``) and the load
average (1 and 5 minutes) when the last item was published. There is no baseline run: the target
is absolute (the 5-minute sweep alone gives a p95 near 5 minutes). ``python -m bench.ready_to_nomi
[ITEMS [BUSINESSES [SECONDS]]]`` runs another size.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bench.publish import connector_database, prepare
from bench.support.businesses import BenchBusiness, bench_item
from bench.support.harness import bench_line, machine, prefect_server, sandbox_process
from connector.items.assess import reassess
from connector.store.db import make_engine
from connector.store.db import session as db_session
from connector.store.models import Item

TARGET = 30
ON_READY = "auto-publish-to-nomi/on-ready"
REPO_ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def add_ready(url: str, business: BenchBusiness, first: int, count: int) -> int:
    """Add ``count`` items to a business and assess them; returns how many became Ready."""
    engine = make_engine(url)
    with db_session(engine) as session:
        session.add_all(
            bench_item(business, n, name="ready", net_step=Decimal("0.05"))
            for n in range(first, first + count)
        )
        session.flush()
        became = len(reassess(session, business_id=business.business_id).became_ready)
    engine.dispose()
    return became


def serve(url: str, folder: Path) -> subprocess.Popen[bytes]:
    """``python -m deployments.serve`` for auto-publish-to-nomi (no schedules) on this server."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        NOMI_CONNECTOR_DATABASE_URL=url,
        NOMI_CONNECTOR_REPO=str(REPO_ROOT),
        NOMI_CONNECTOR_HOME=str(folder / "home"),
    )
    command = [sys.executable, "-m", "deployments.serve", "--only", "auto-publish-to-nomi"]
    log = (folder / "serve.log").open("wb")
    return subprocess.Popen(
        [*command, "--no-schedules"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def _on_ready() -> tuple[bool, int]:
    """Whether the on-ready deployment is served with its trigger, and its flow runs so far."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(ON_READY)
        except Exception:
            return False, 0
        related = await client.read_resource_related_automations(
            f"prefect.deployment.{deployment.id}"
        )
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        return bool(related) and str(deployment.entrypoint).startswith("flows."), len(runs)


async def _stages() -> dict[str, list[float]]:
    """Seconds spent by each on-ready run in each stage, from Prefect's own records.

    ``fire``: event to flow run created (triggers and actions services); ``poll``: created to
    Pending (the serve runner found it); ``spawn``: Pending to Running (its process started);
    ``first_batch``: Running to its first batch task run (flow set-up, lock wait).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    out: dict[str, list[float]] = {"fire": [], "poll": [], "spawn": [], "first_batch": []}
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(ON_READY)
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        for fr in runs:
            params = fr.parameters.get("params") or {}
            try:
                event_at = datetime.fromisoformat(str(params.get("ready_event_at")))
            except ValueError:
                continue
            if fr.created is not None:
                out["fire"].append((fr.created - event_at).total_seconds())
            states = await client.read_flow_run_states(fr.id)
            pending = next((s.timestamp for s in states if s.type.value == "PENDING"), None)
            if pending is not None and fr.created is not None:
                out["poll"].append((pending - fr.created).total_seconds())
            if pending is not None and fr.start_time is not None:
                out["spawn"].append((fr.start_time - pending).total_seconds())
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id]))
            )
            firsts = [t.start_time for t in tasks if "-batch-" in t.name and t.start_time]
            if firsts and fr.start_time is not None:
                out["first_batch"].append((min(firsts) - fr.start_time).total_seconds())
    return out


def wait(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` every half second; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def latencies(url: str, sandbox: Any, businesses: list[BenchBusiness]) -> list[float]:
    """Seconds from each item's ``ready_at`` to its Nomi record's creation."""
    created: dict[str, datetime] = {}
    for business in businesses:
        for kind in ("expense", "sales_invoice"):
            found = sandbox.admin.get("/records", params={"tenant_id": business.tenant_id,
                                                          "kind": kind})  # fmt: skip
            for record in found.json():
                stamp = record.get("created_at")
                if isinstance(stamp, str):
                    created[str(record.get("source_id"))] = datetime.fromisoformat(stamp)
    engine = make_engine(url)
    with db_session(engine) as session:
        items = session.exec(select(Item).where(col(Item.external_id).startswith("ready-"))).all()
    engine.dispose()
    out = []
    for item in items:
        done = created.get(str(item.id)) or item.published_at
        if item.ready_at is None or done is None:
            raise RuntimeError(f"item {item.external_id} is {item.status}, not published")
        aware = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in (done, item.ready_at)]
        out.append((aware[0] - aware[1]).total_seconds())
    return out


def run(
    *, items: int = 1_000, businesses: int = 20, seconds: float = 180.0, own_server: bool = True
) -> str:
    """Set up, serve, feed items at a steady rate, wait for them in Nomi; returns the BENCH line."""
    from blocks.app import NomiApp
    from tasks.events import emit_items_ready
    from tasks.runtime import DEFAULT_APP_BLOCK

    items -= items % businesses
    with (
        tempfile.TemporaryDirectory(prefix="nomi-bench-ready-") as folder,
        sandbox_process() as sandbox,
        prefect_server() if own_server else nullcontext(),
    ):
        url, app_block, connected = prepare(
            sandbox, Path(folder), businesses=businesses, items=0, limits={"per_minute": 0}
        )
        app: NomiApp = NomiApp.load(app_block, _sync=True)  # type: ignore[call-arg,assignment]
        app.save(DEFAULT_APP_BLOCK, overwrite=True)  # the block the trigger's runs load
        server = serve(url, Path(folder))
        try:
            wait(lambda: asyncio.run(_on_ready())[0], 120, "the served on-ready deployment")
            per_tick = max(1, round(items / max(seconds, 1.0)))  # about one batch a second
            events, fed, tick = 0, 0, 0
            started = time.monotonic()
            with connector_database(url):  # auto-publish is on for every bench business
                while fed < items:
                    business = connected[tick % len(connected)]
                    tick += 1
                    count = min(per_tick, items - fed)
                    became = add_ready(url, business, fed, count)
                    events += emit_items_ready(business.slug, became, "bench")
                    fed += count
                    time.sleep(max(0.0, started + fed * seconds / items - time.monotonic()))

            def done() -> bool:
                engine = make_engine(url)
                with db_session(engine) as session:
                    left = session.exec(
                        select(Item.id).where(col(Item.status).in_(["ready", "publishing"]))
                    ).first()
                engine.dispose()
                return left is None

            wait(done, 300, "every item published")
            load = os.getloadavg()
            runs = asyncio.run(_on_ready())[1]
            stages = asyncio.run(_stages())
        finally:
            server.terminate()  # a run still watching its window is stopped with it
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
        spans = latencies(url, sandbox, connected)
        if sandbox.admin.get("/duplicates").json() != {"expenses": {}, "sales_invoices": {}}:
            raise RuntimeError("records created twice")
    return bench_line(
        "ready-to-nomi",
        percentile(spans, 0.95),
        f"{TARGET}(at-most)",
        p50_s=f"{percentile(spans, 0.5):.1f}",
        max_s=f"{max(spans):.1f}",
        items=items,
        businesses=businesses,
        feed_s=f"{seconds:.0f}",
        events=events,
        runs=runs,
        **{
            f"{stage}_s": f"{percentile(spans, 0.5):.1f}/{percentile(spans, 0.95):.1f}"
            for stage, spans in stages.items()
            if spans
        },
        load=f"{load[0]:.1f}/{load[1]:.1f}",
    )


def main(argv: list[str] | None = None) -> None:
    """Run at the default size (1,000 items, 20 businesses, over 3 minutes) or the one given."""
    args = [float(a) for a in (argv or [])]
    line = run(
        items=int(args[0]) if args else 1_000,
        businesses=int(args[1]) if len(args) > 1 else 20,
        seconds=args[2] if len(args) > 2 else 180.0,
    )
    print(f"# {machine()}; served on-ready deployment, no sweep", flush=True)
    print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
