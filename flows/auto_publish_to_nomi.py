"""The auto-publish-to-nomi flow: the scheduled sweep publishing every Ready item exactly once."""

from __future__ import annotations

import queue
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, Literal, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.publishing.queue import Target, count_ready, publish_targets
from connector.settings import ConnectorSettings
from tasks.publish import (
    BatchSummary,
    BusinessSummary,
    publish_next_batch,
    record_publish_run,
    recover_stale_claims,
    take_publish_locks,
)
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits, business_run_name, db, unwalked

PROGRESS_EVERY_SECONDS = 1.0
"""Least time between two updates of the run's progress artifact (one API call each)."""


class AutoPublishParams(BaseModel):
    """Which businesses to sweep, and how hard."""

    business: str | None = Field(
        default=None, description="Business slug. Empty: every business with auto-publish on."
    )
    trigger: Literal["schedule", "manual", "reconnect"] = Field(
        default="schedule",
        description="Why the run starts. `reconnect` also publishes items that waited while the "
        "connection was down, even with auto-publish off.",
    )
    app_block: str = Field(default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block.")
    batch_size: int = Field(default=200, ge=1, le=1000, description="Items per task run.")
    claim_timeout_minutes: float = Field(
        default=15, gt=0, description="A claim older than this was left by a dead run."
    )
    lock_wait_seconds: float = Field(
        default=2, ge=0, description="Wait this long for another run of the same business."
    )
    batch_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a batch after a transient failure."
    )
    batch_retry_delay_seconds: float = Field(
        default=10, ge=0, description="First retry delay of a batch (doubles each retry)."
    )
    limits: NomiLimits = Field(
        default_factory=NomiLimits, description="Nomi's per-organisation limits."
    )


class PublishSummary(BaseModel):
    """What a publish run did, per business (slug -> totals)."""

    trigger: str
    recovered: int = 0
    businesses: dict[str, BusinessSummary] = Field(default_factory=dict)

    @property
    def published(self) -> int:
        """Items published in all businesses."""
        return sum(b.published for b in self.businesses.values())

    @property
    def failed(self) -> bool:
        """A batch failed after its retries in some business."""
        return any(b.failed for b in self.businesses.values())


@flow(
    name="auto-publish-to-nomi",
    flow_run_name=business_run_name("auto-publish", default="all"),
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
)
def auto_publish_to_nomi(params: AutoPublishParams) -> PublishSummary:
    """Publish every Ready item to Nomi, exactly once.

    Sweeps every business with **auto-publish** on and a connected Nomi connection (or the one
    `business`). Cost and sales items are published (expense claims only when a supplier rule
    turns auto-publish on for them); items whose last error is a Nomi rejection wait until someone
    changes them or publishes them with **publish-items-to-nomi**. With `trigger=reconnect` it
    also publishes the items that waited while the connection was down.

    First gives back claims older than `claim_timeout_minutes` (left by crashed runs), then
    publishes each business in batches: one task run per batch of up to `batch_size` items, one
    batch per business at a time, the next submitted as soon as the last ended (a business
    whose batch took every Ready item it found gets no further batch).
    One run per business at a time (global concurrency limit `nomi-publish-<slug>`); a business
    another run is publishing is skipped and said so. A lost connection stops that business
    (connection marked expired, event `nomi.connection.expired`, artifact `reconnect-<slug>`).

    Artifacts: a progress bar while running and `publish-summary-<slug>` per business once it
    is done (published, held in review and why, rejected and why). Event
    `nomi.publish.finished` per business. The run fails when a batch still failed after its
    retries.
    """
    logger = get_run_logger()
    settings = ConnectorSettings()
    url = settings.database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    with db(url) as session:
        targets = publish_targets(session, params.business, params.trigger)
    ids = [t.business_id for t in targets if t.skipped is None]
    summary = PublishSummary(trigger=params.trigger)
    summary.recovered = recover_stale_claims(url, params.claim_timeout_minutes * 60, ids or None)
    batch_task = publish_next_batch.with_options(
        retries=params.batch_retries,
        retry_delay_seconds=[params.batch_retry_delay_seconds * 2**n for n in range(10)][
            : max(params.batch_retries, 1)
        ],
    )
    flow_run_id = _flow_run_id()

    def record(target: Target) -> PrefectFuture[BusinessSummary]:
        """Record a business's run (PublishRun row, summary artifact, event) on the task runner."""
        return record_publish_run.submit(
            url,
            unwalked(summary.businesses[target.slug]),
            business_id=target.business_id,
            trigger=params.trigger,
            flow_run_id=flow_run_id,
            started_at=started,
        )

    # One record per business, submitted as soon as the business is done (skipped ones first)
    # so the task runner writes them while other businesses still publish.
    records: list[PrefectFuture[BusinessSummary]] = []
    with ExitStack() as locks:
        held = take_publish_locks(
            locks,
            [t.slug for t in targets if t.skipped is None],
            wait_seconds=params.lock_wait_seconds,
        )
        active: list[Target] = []
        for target in targets:
            result = BusinessSummary(business=target.slug, run_id=uuid.uuid4())
            summary.businesses[target.slug] = result
            if target.skipped is not None:
                result.skipped = target.skipped
            elif target.slug not in held:
                result.skipped = "another run is publishing this business"
            else:
                active.append(target)
            if result.skipped:
                logger.info("skipping %s: %s", target.slug, result.skipped)
                records.append(record(target))
        with db(url) as session:
            total = max(1, count_ready(session, [t.business_id for t in active]))
        progress = cast(
            uuid.UUID, create_progress_artifact(progress=0.0, description="Items handled (%)")
        )
        done: dict[str, list[uuid.UUID]] = {t.slug: [] for t in active}
        running: dict[str, PrefectFuture[BatchSummary]] = {}
        finished: queue.SimpleQueue[str] = queue.SimpleQueue()

        def submit(target: Target) -> None:
            """Submit the business's next batch; its slug is queued on ``finished`` when done."""
            slug = target.slug
            future = batch_task.submit(
                url,
                app,
                business_id=target.business_id,
                slug=slug,
                run_id=summary.businesses[slug].run_id,
                batch_no=summary.businesses[slug].batches + 1,  # counts the batches that ended
                batch_size=params.batch_size,
                limits=params.limits,
                selection=target.selection,
                exclude=unwalked(list(done[slug])),
            )
            running[slug] = future
            future.add_done_callback(lambda _: finished.put(slug))

        by_slug = {t.slug: t for t in active}
        for target in active:
            submit(target)
        shown = time.monotonic()
        while running:
            slug = finished.get()
            future = running.pop(slug)
            business = summary.businesses[slug]
            batch = _result(future)
            if batch is None:
                business.failed = True
                logger.error("%s: a batch failed after its retries (%s)", slug, future.state)
            else:
                business.add(batch)
                done[slug].extend(r.item_id for r in batch.rows)
            if batch is not None and batch.claimed and batch.more and batch.stopped is None:
                submit(by_slug[slug])  # at once: no worker waits for slower businesses
            else:
                records.append(record(by_slug[slug]))  # the business is done: record it now
            if time.monotonic() - shown >= PROGRESS_EVERY_SECONDS:
                shown = time.monotonic()
                handled = sum(b.claimed for b in summary.businesses.values())
                update_progress_artifact(progress, progress=min(100.0, 100.0 * handled / total))
        update_progress_artifact(progress, progress=100.0)
    for written in records:
        recorded = written.result()  # counted again from the durable attempt rows
        summary.businesses[recorded.business] = recorded
    logger.info("published %d items", summary.published)
    if summary.failed:
        failed = sorted(s for s, b in summary.businesses.items() if b.failed)
        raise RuntimeError(f"publishing failed after retries for: {', '.join(failed)}")
    return summary


def _result(future: PrefectFuture[BatchSummary]) -> BatchSummary | None:
    """The batch's summary, or None when its task run failed."""
    try:
        return future.result()
    except Exception:
        return None


def _flow_run_id() -> uuid.UUID | None:
    run_id: Any = flow_run.id
    return uuid.UUID(str(run_id)) if run_id else None
