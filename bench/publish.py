"""Benchmark: the auto-publish flow against plain httpx posting the same payloads to the sandbox.

Prints ``BENCH publish`` (our items/s over the baseline's) with where each side's CPU went and the
ratio's ceilings. ``python -m bench.publish [ITEMS [BUSINESSES]]`` runs another size. Method and
figures: docs/performance.md.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from bench.support.businesses import (
    BenchBusiness,
    add_ready_items,
    connect_businesses,
    mirror_lists,
    save_app_block,
)
from bench.support.cpu import CpuSpan, cores, measure_cpu
from bench.support.harness import (
    NO_LIMITS,
    Sandbox,
    bench_line,
    count_task_runs,
    machine,
    prefect_server,
    sandbox_process,
    temp_database,
)
from connector.items.context import build_context, facts_from_item
from connector.publishing.payloads import expense_body, sales_invoice_body
from connector.rules.engine import resolve
from connector.rules.vocabulary import ItemKind
from connector.store.db import make_engine
from connector.store.db import session as db_session
from connector.store.models import Item
from nomi.models import ExpenseCreate, SalesInvoiceCreate
from nomi.throttle import PROCESS_IN_FLIGHT

TARGET = "none"  # retired (issue 22): information only; see publish_remote and publish_cpu
PER_TENANT_CONCURRENCY = 5


@dataclass
class PublishResult:
    """What one publish benchmark measured."""

    items: int
    businesses: int
    concurrency: int
    ours_seconds: float
    baseline_seconds: float
    published: int
    task_runs: int
    baseline_cpu: CpuSpan = field(default_factory=CpuSpan)
    ours_cpu: CpuSpan = field(default_factory=CpuSpan)

    @property
    def ours_rate(self) -> float:
        """Items per second published by the flow."""
        return self.items / self.ours_seconds

    @property
    def baseline_rate(self) -> float:
        """Items per second posted by the baseline."""
        return self.items / self.baseline_seconds

    @property
    def ratio(self) -> float:
        """Our throughput divided by the baseline's."""
        return self.ours_rate / self.baseline_rate

    @property
    def gil_bound(self) -> float:
        """The ratio if our process had a whole core: its CPU per item is the least time per item.

        One interpreter runs the flow (Prefect's thread pool, one GIL), so while it is the
        bottleneck the flow cannot publish faster than one item per CPU-time-per-item.
        """
        own = self.ours_cpu.own / self.items
        return (1 / own) / self.baseline_rate if own > 0 else float("inf")

    @property
    def cores_bound(self) -> float:
        """The ratio if our side (flow, sandbox, Prefect server) had every core of the machine."""
        total = self.ours_cpu.total / self.items
        return (cores() / total) / self.baseline_rate if total > 0 else float("inf")


LAST: dict[str, PublishResult] = {}  # the task-runs benchmark reuses this process's run


@dataclass(frozen=True)
class Post:
    """One baseline request."""

    path: str
    tenant_id: str
    token: str
    body: dict[str, Any]


def baseline_posts(database_url: str, businesses: list[BenchBusiness]) -> list[Post]:
    """The request bodies our publisher would send, with their own source ids and numbers."""
    engine = make_engine(database_url)
    posts: list[Post] = []
    with db_session(engine) as session:
        for business in businesses:
            ctx = build_context(session, business.business_id)
            items = session.exec(select(Item).where(Item.business_id == business.business_id))
            for item in items:
                res = resolve(facts_from_item(item), ctx)
                body: ExpenseCreate | SalesInvoiceCreate
                if item.kind == ItemKind.SALES:
                    assert res.contact_id is not None
                    body = sales_invoice_body(item, res, contact_id=res.contact_id)
                    path = "/sales-invoices"
                else:
                    body = expense_body(item, res, contact_id=res.contact_id, user_id=None)
                    path = "/expenses"
                payload = body.model_dump(mode="json", exclude_none=True)
                payload["source_id"] = f"baseline-{item.id}"
                if "number" in payload:
                    payload["number"] = f"BASE-{payload['number']}"
                posts.append(Post(path, business.tenant_id, business.access_token, payload))
    engine.dispose()
    return posts


def post_all(api_url: str, posts: list[Post], *, workers: int) -> float:
    """POST every request on ``workers`` threads with plain httpx; returns the seconds taken.

    Raises:
        RuntimeError: Some request was not answered 2xx (the comparison would be void).
    """
    work: queue.SimpleQueue[Post] = queue.SimpleQueue()
    for post in posts:
        work.put(post)
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=api_url, timeout=60) as http:
            while True:
                try:
                    post = work.get_nowait()
                except queue.Empty:
                    return
                answer = http.post(
                    post.path,
                    json=post.body,
                    headers={
                        "Authorization": f"Bearer {post.token}",
                        "Nomi-Tenant-Id": post.tenant_id,
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
                if answer.status_code >= 300:
                    failures.append(f"{post.path} {answer.status_code}")

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=1800)
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"baseline: {len(failures)} requests failed, e.g. {failures[:3]}")
    return seconds


def flow_workers() -> int:
    """Task-runner threads of the auto-publish flow (batches of businesses published at once)."""
    from flows.auto_publish_to_nomi import auto_publish_to_nomi

    return int(getattr(auto_publish_to_nomi.task_runner, "_max_workers", 4) or 4)


@contextmanager
def connector_database(url: str) -> Iterator[None]:
    """Point the flows' ``ConnectorSettings`` at ``url`` for the block's duration."""
    old = os.environ.get("NOMI_CONNECTOR_DATABASE_URL")
    os.environ["NOMI_CONNECTOR_DATABASE_URL"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NOMI_CONNECTOR_DATABASE_URL", None)
        else:
            os.environ["NOMI_CONNECTOR_DATABASE_URL"] = old


def prepare(
    sandbox: Sandbox, folder: Path, *, businesses: int, items: int, limits: dict[str, int]
) -> tuple[str, str, list[BenchBusiness]]:
    """Organisations, consents, blocks, businesses, mirrored lists and Ready items.

    Returns:
        The connector database URL, the NomiApp block name and the businesses.
    """
    started = time.perf_counter()
    sandbox.settings(**NO_LIMITS)  # the set-up itself is not rate limited
    tenants = sandbox.add_organisations(businesses, f"Bench {uuid.uuid4().hex[:6]}")
    url = temp_database(folder)
    app_block = save_app_block(sandbox)
    connected = connect_businesses(sandbox, url, tenants)
    print(f"# set-up: {businesses} businesses connected after {_since(started)}", flush=True)
    per_business = items // businesses
    for business in connected:
        mirror_lists(sandbox, url, business)
        add_ready_items(url, business, per_business)
    print(f"# set-up: lists mirrored, items ready after {_since(started)}", flush=True)
    sandbox.settings(**limits)
    return url, app_block, connected


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def run_flow(url: str, app_block: str, limits: Any) -> tuple[float, int, uuid.UUID]:
    """Run auto-publish for every business; returns (seconds, items published, flow run id)."""
    from flows.auto_publish_to_nomi import AutoPublishParams, auto_publish_to_nomi

    # No other run exists here: wait long enough for a busy local server to grant the free slots
    # (with the default 2 s a slow grant was taken for "another run is publishing" and skipped).
    params = AutoPublishParams(
        app_block=app_block, limits=limits, batch_size=200, lock_wait_seconds=30
    )
    with connector_database(url):
        started = time.perf_counter()
        state = auto_publish_to_nomi(params, return_state=True)
        seconds = time.perf_counter() - started
    summary = state.result()
    flow_run_id = uuid.UUID(str(state.state_details.flow_run_id))
    return seconds, int(summary.published), flow_run_id


def run(
    *, items: int = 10_000, businesses: int = 50, own_server: bool = True, latency: float = 0.0
) -> PublishResult:
    """Set up, measure the baseline then the flow, and check nothing was published twice.

    Args:
        items: Items in all (split evenly over the businesses).
        businesses: Businesses (sandbox organisations).
        own_server: Start a local Prefect server (False when the caller already runs one).
        latency: Seconds the sandbox waits before answering each API request, for both sides
            (its ``latency`` fault: a remote Nomi; ``bench.publish_remote``).

    Returns:
        The measurements.
    """
    from tasks.runtime import NomiLimits

    items = items - items % businesses
    # Requests in flight at most on our side: the flow's batches at the tenant's 5 each, within
    # the process's cap on Nomi requests in flight (nomi.throttle.PROCESS_IN_FLIGHT).
    concurrency = min(flow_workers() * PER_TENANT_CONCURRENCY, PROCESS_IN_FLIGHT)
    with (
        tempfile.TemporaryDirectory(prefix="nomi-bench-") as folder,
        sandbox_process() as sandbox,
        prefect_server() if own_server else nullcontext(),
    ):
        url, app_block, connected = prepare(
            sandbox, Path(folder), businesses=businesses, items=items, limits=NO_LIMITS
        )
        posts = baseline_posts(url, connected)
        if latency > 0:
            fault = {"fault": "latency", "path": "/api/v1", "params": {"seconds": latency}}
            sandbox.admin.post("/faults", json=fault).raise_for_status()
        with measure_cpu() as baseline_cpu:
            baseline_seconds = post_all(sandbox.api_url, posts, workers=concurrency)
        limits = NomiLimits(per_minute=0, concurrent=PER_TENANT_CONCURRENCY)
        with measure_cpu() as ours_cpu:
            ours_seconds, published, flow_run_id = run_flow(url, app_block, limits)
        duplicates = sandbox.admin.get("/duplicates").json()
        if any(duplicates.values()):
            raise RuntimeError(f"records created twice: {duplicates}")
        if published != items:
            raise RuntimeError(f"the flow published {published} of {items} items")
        result = PublishResult(
            items=items,
            businesses=businesses,
            concurrency=concurrency,
            ours_seconds=ours_seconds,
            baseline_seconds=baseline_seconds,
            published=published,
            task_runs=count_task_runs(flow_run_id),
            baseline_cpu=baseline_cpu,
            ours_cpu=ours_cpu,
        )
    LAST["publish-remote" if latency > 0 else "publish"] = result
    return result


def report(result: PublishResult) -> str:
    """The BENCH line of a publish measurement (CPU per item in ms: ``*_cpu_ms``)."""
    ours = result.ours_cpu.per_item_ms(result.items)
    base = result.baseline_cpu.per_item_ms(result.items)
    return bench_line(
        "publish",
        result.ratio,
        str(TARGET),
        ours=f"{result.ours_rate:.1f}/s",
        baseline=f"{result.baseline_rate:.1f}/s",
        ours_s=f"{result.ours_seconds:.2f}",
        baseline_s=f"{result.baseline_seconds:.2f}",
        items=result.items,
        businesses=result.businesses,
        concurrency=result.concurrency,
        gil_bound=f"{result.gil_bound:.3f}",
        cores_bound=f"{result.cores_bound:.3f}",
        cores=cores(),
        ours_flow_cpu_ms=f"{ours['own']:.2f}",
        ours_sandbox_cpu_ms=f"{ours.get('sandbox', 0.0):.2f}",
        ours_prefect_cpu_ms=f"{ours.get('prefect', 0.0):.2f}",
        ours_busy=_busy(result.ours_cpu),
        baseline_client_cpu_ms=f"{base['own']:.2f}",
        baseline_sandbox_cpu_ms=f"{base.get('sandbox', 0.0):.2f}",
        baseline_busy=_busy(result.baseline_cpu),
    )


def _busy(span: CpuSpan) -> str:
    """The machine's busy time over a span, in percent of one core."""
    return f"{100 * span.machine / span.wall:.0f}%" if span.wall > 0 else "n/a"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark at full size (or ITEMS and BUSINESSES from the command line)."""
    args = [int(a) for a in (argv or [])]
    result = run(items=args[0] if args else 10_000, businesses=args[1] if len(args) > 1 else 50)
    print(f"# {machine()}; connector DB: temporary SQLite file; sandbox: own process", flush=True)
    print(report(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
