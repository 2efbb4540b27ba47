"""How a publish run walks its businesses: one batch per business at a time, the next at once.

``Sweep`` is auto-publish-to-nomi's scheduler. Each business gets one batch task run at a time; when
a batch ends, the business's next batch is submitted at once (no worker waits for slower
businesses) or, when the business is done, its record task is submitted, so the task runner writes
it while others still publish. ``publish_chosen`` is publish-items-to-nomi's loop over one
selection (``choose_items`` splits it first). They call the tasks of ``tasks.publish`` and fold
their results.
"""

from __future__ import annotations

import queue
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.tasks import Task
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.items.choices import ChosenItems, choose_items_to_publish
from connector.publishing.queue import Target, count_ready
from tasks.publish import BatchSummary, BusinessSummary, publish_next_batch, record_publish_run
from tasks.runtime import NomiLimits, business_and_connection, db, unwalked

PROGRESS_EVERY_SECONDS = 1.0
"""Least time between two updates of the run's progress artifact (one API call each)."""


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


def current_flow_run_id() -> uuid.UUID | None:
    """The id of the flow run this code runs in (None outside one)."""
    run_id: Any = flow_run.id
    return uuid.UUID(str(run_id)) if run_id else None


@dataclass
class Sweep:
    """One auto-publish run's businesses, their batches and their records."""

    database_url: str
    app: NomiApp
    batch_task: Task[..., BatchSummary]
    summary: PublishSummary
    batch_size: int
    limits: NomiLimits
    started: datetime
    flow_run_id: uuid.UUID | None = field(default_factory=current_flow_run_id)
    records: list[PrefectFuture[BusinessSummary]] = field(default_factory=list)
    _done: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    _running: dict[str, PrefectFuture[BatchSummary]] = field(default_factory=dict)
    _finished: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)

    def admit(self, targets: list[Target], held: set[str]) -> list[Target]:
        """Open each business's summary; record the skipped ones now. Returns those to publish."""
        active: list[Target] = []
        for target in targets:
            result = BusinessSummary(business=target.slug, run_id=uuid.uuid4())
            self.summary.businesses[target.slug] = result
            if target.skipped is not None:
                result.skipped = target.skipped
            elif target.slug not in held:
                result.skipped = "another run is publishing this business"
            else:
                active.append(target)
            if result.skipped:
                get_run_logger().info("skipping %s: %s", target.slug, result.skipped)
                self._record(target)
        return active

    def publish(self, active: list[Target]) -> None:
        """Run every active business's batches to the end, with a progress artifact."""
        with db(self.database_url) as session:
            total = max(1, count_ready(session, [t.business_id for t in active]))
        progress = cast(
            uuid.UUID, create_progress_artifact(progress=0.0, description="Items handled (%)")
        )
        self._done = {t.slug: [] for t in active}
        by_slug = {t.slug: t for t in active}
        for target in active:
            self._submit(target)
        shown = time.monotonic()
        while self._running:
            slug = self._finished.get()
            if self._fold(slug):
                self._submit(by_slug[slug])  # at once: no worker waits for slower businesses
            else:
                self._record(by_slug[slug])  # the business is done: record it now
            if time.monotonic() - shown >= PROGRESS_EVERY_SECONDS:
                shown = time.monotonic()
                handled = sum(b.claimed for b in self.summary.businesses.values())
                update_progress_artifact(progress, progress=min(100.0, 100.0 * handled / total))
        update_progress_artifact(progress, progress=100.0)

    def finish(self) -> PublishSummary:
        """Wait for the records; each business's totals are counted again from the attempt rows."""
        for written in self.records:
            recorded = written.result()
            self.summary.businesses[recorded.business] = recorded
        return self.summary

    def _submit(self, target: Target) -> None:
        """Submit the business's next batch; its slug is queued on ``_finished`` when done."""
        slug = target.slug
        business = self.summary.businesses[slug]
        future = self.batch_task.submit(
            self.database_url,
            self.app,
            business_id=target.business_id,
            slug=slug,
            run_id=business.run_id,
            batch_no=business.batches + 1,  # counts the batches that ended
            batch_size=self.batch_size,
            limits=self.limits,
            selection=target.selection,
            exclude=unwalked(list(self._done[slug])),
        )
        self._running[slug] = future
        future.add_done_callback(lambda _: self._finished.put(slug))

    def _fold(self, slug: str) -> bool:
        """Fold the business's ended batch into its summary; True when it needs another batch."""
        future = self._running.pop(slug)
        business = self.summary.businesses[slug]
        batch = _result(future)
        if batch is None:
            business.failed = True
            get_run_logger().error("%s: a batch failed after its retries (%s)", slug, future.state)
            return False
        business.add(batch)
        self._done[slug].extend(r.item_id for r in batch.rows)
        return bool(batch.claimed and batch.more and batch.stopped is None)

    def _record(self, target: Target) -> None:
        """Record a business's run (PublishRun row, summary artifact, event) on the task runner."""
        self.records.append(
            record_publish_run.submit(
                self.database_url,
                unwalked(self.summary.businesses[target.slug]),
                business_id=target.business_id,
                trigger=self.summary.trigger,
                flow_run_id=self.flow_run_id,
                started_at=self.started,
            )
        )


@task(name="choose-items", cache_policy=NO_CACHE, task_run_name="choose-items-{business_slug}")
def choose_items(
    database_url: str,
    *,
    business_slug: str,
    item_ids: list[uuid.UUID],
    acting_email: str,
    confirm_new_contacts: bool,
    map_contacts: dict[str, str],
) -> ChosenItems:
    """Check the member, apply their contact answers and split the selection (one write session)."""
    # A write session: the member check, the contact choices and their reassessment read and
    # then write while auto-publish may be committing (see tasks.runtime.db).
    with db(database_url, write=True) as session:
        business, _ = business_and_connection(session, business_slug)
        return choose_items_to_publish(
            session,
            business_id=business.id,
            item_ids=item_ids,
            acting_email=acting_email,
            confirm_new_contacts=confirm_new_contacts,
            map_contacts=map_contacts,
        )


def publish_chosen(
    database_url: str,
    app: NomiApp,
    *,
    business_id: uuid.UUID,
    slug: str,
    ready: list[uuid.UUID],
    batch_size: int,
    limits: NomiLimits,
    started: datetime,
) -> BusinessSummary:
    """Publish a chosen selection of Ready items batch by batch, then record the run ("manual")."""
    summary = BusinessSummary(business=slug, run_id=uuid.uuid4())
    done: list[uuid.UUID] = []
    while ready:
        batch = publish_next_batch(
            database_url,
            app,
            business_id=business_id,
            slug=slug,
            run_id=summary.run_id,
            batch_no=summary.batches + 1,  # counts the batches that ended
            batch_size=batch_size,
            limits=limits,
            item_ids=unwalked(ready),
            exclude=unwalked(done),
        )
        summary.add(batch)
        done.extend(r.item_id for r in batch.rows)
        handled = set(done)
        ready = [i for i in ready if i not in handled]
        if not batch.claimed or batch.stopped is not None:
            break
    return record_publish_run(  # counted again from the durable attempt rows
        database_url,
        unwalked(summary),
        business_id=business_id,
        trigger="manual",
        flow_run_id=current_flow_run_id(),
        started_at=started,
    )


def _result(future: PrefectFuture[BatchSummary]) -> BatchSummary | None:
    """The batch's summary, or None when its task run failed."""
    try:
        return future.result()
    except Exception:
        return None
