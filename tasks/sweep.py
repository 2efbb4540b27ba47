"""How a publish run walks its businesses: one batch per business at a time, the next at once.

``Sweep`` is auto-publish-to-nomi's scheduler. Each business gets one batch task run at a time; when
a batch ends, the business's next batch is submitted at once (no worker waits for slower
businesses). When a business's batches found nothing more, the run drains it: items that became
Ready while it ran get another pass (under the same lock, so a run queued on the lock finds them
published). An on-ready run also watches its businesses until ``watch_until`` (the trigger's
window plus a margin), publishing what turns Ready within about ``poll_seconds``, and makes one
last pass after it. Then the business's record task is submitted, so the task runner writes it
while others still publish. ``publish_chosen`` is publish-items-to-nomi's loop over one
selection (``choose_items`` splits it first, ``report_selection`` names what it did not
publish). They call the tasks of ``tasks.publish`` and fold
their results.
"""

from __future__ import annotations

import queue
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.tasks import Task

from blocks.app import NomiApp
from connector.access import PermissionDeniedError
from connector.errors import NotFoundError
from connector.history.keys import artifact_key
from connector.items.choices import (
    ChosenItems,
    choose_items_to_publish,
    selection_markdown,
    selection_message,
    why_not_published,
)
from connector.publishing.queue import Target, count_ready, ready_since
from tasks.publish import BatchSummary, publish_next_batch
from tasks.record import BusinessSummary, PublishSummary, record_publish_run
from tasks.runtime import NomiLimits, business_and_connection, db, unwalked

PROGRESS_EVERY_SECONDS = 1.0
"""Least time between two updates of the run's progress artifact (one API call each)."""

DRAIN_SECONDS = 30.0
"""How long after its start (or the end of its watch) a run still drains a business: items that
turned Ready meanwhile get another pass. Bounded so a steady stream cannot keep one run alive (a
later event's run, waiting on the lock, takes over)."""


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
    #: On-ready runs: watch each business for Ready items until then, then one last pass.
    watch_until: datetime | None = None
    #: Seconds between two looks at a watched business's Ready items.
    poll_seconds: float = 1.0
    flow_run_id: uuid.UUID | None = field(default_factory=current_flow_run_id)
    records: list[PrefectFuture[BusinessSummary]] = field(default_factory=list)
    _done: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    _running: dict[str, PrefectFuture[BatchSummary]] = field(default_factory=dict)
    _finished: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)
    #: Per business: when its current pass began, and items a pass found but did not take.
    _pass_began: dict[str, datetime] = field(default_factory=dict)
    _asked: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    _idle: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    _watched: dict[str, Target] = field(default_factory=dict)

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
            self._begin_pass(target)
        shown = looked = time.monotonic()
        while self._running or self._watched:
            try:
                slug = self._finished.get(timeout=self.poll_seconds if self._watched else None)
            except queue.Empty:
                slug = None
            if slug is not None:
                if self._fold(slug):
                    self._submit(by_slug[slug])  # at once: no worker waits for slower businesses
                else:
                    self._after_pass(by_slug[slug])
            if self._watched and time.monotonic() - looked >= self.poll_seconds:
                looked = time.monotonic()
                self._look(list(self._watched.values()))
            if time.monotonic() - shown >= PROGRESS_EVERY_SECONDS:
                shown = time.monotonic()
                handled = sum(b.claimed for b in self.summary.businesses.values())
                update_progress_artifact(progress, progress=min(100.0, 100.0 * handled / total))
        update_progress_artifact(progress, progress=100.0)

    def finish(self) -> PublishSummary:
        """Wait for the records (totals counted again from the attempt rows; overviews written)."""
        for written in self.records:
            recorded = written.result()
            self.summary.businesses[recorded.business] = recorded
        return self.summary

    def _begin_pass(self, target: Target, asked: set[uuid.UUID] | None = None) -> None:
        """Start a pass over the business's Ready items (``asked``: the ones that started it)."""
        self._pass_began[target.slug] = datetime.now(UTC)
        self._asked[target.slug] = asked or set()
        self._submit(target)

    def _after_pass(self, target: Target) -> None:
        """The business's pass found nothing more: drain, watch, pass once more, or record it."""
        slug = target.slug
        business = self.summary.businesses[slug]
        if business.failed or business.stopped is not None:
            self._record(target)
            return
        now = datetime.now(UTC)
        began = self._pass_began[slug]
        if self.watch_until is not None and began < self.watch_until:
            if now < self.watch_until:
                self._watched[slug] = target  # look again every poll_seconds
            else:
                self._begin_pass(target)  # the window closed after this pass began
            return
        fresh = self._fresh([target])[slug]
        drain_end = max(self.started, self.watch_until or self.started)
        if fresh and now < drain_end + timedelta(seconds=DRAIN_SECONDS):
            self._begin_pass(target, fresh)
            return
        self._record(target)  # the business is done: record it now

    def _look(self, watched: list[Target]) -> None:
        """Watched businesses: pass again over those where items turned Ready (one read for
        all), and over all of them once the watch ended."""
        fresh = self._fresh(watched)
        ended = self.watch_until is not None and datetime.now(UTC) >= self.watch_until
        for target in watched:
            if fresh[target.slug] or ended:
                del self._watched[target.slug]
                self._begin_pass(target, fresh[target.slug])

    def _fresh(self, targets: list[Target]) -> dict[str, set[uuid.UUID]]:
        """Per business, items that turned Ready since the run started and no pass handled."""
        # Items whose ready_at precedes the run were the first pass's to take; one committed
        # after its selection is the last pass's (on-ready) or its own event's run's.
        with db(self.database_url) as session:
            ready = ready_since(session, [t.business_id for t in targets], self.started)
        return {
            t.slug: ready.get(t.business_id, set())
            - set(self._done[t.slug])
            - self._idle.get(t.slug, set())
            for t in targets
        }

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
        more = bool(batch.claimed and batch.more and batch.stopped is None)
        if not more:  # what started this pass and it did not take is not auto-publishable
            left = self._asked.pop(slug, set()) - set(self._done[slug])
            self._idle.setdefault(slug, set()).update(left)
        return more

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


@dataclass(frozen=True)
class Refused:
    """Why a publish selection was refused before anything was published (one readable line)."""

    reason: str


#: What refuses a selection: the acting user, the business or an external id (no retry helps).
REFUSALS = (PermissionDeniedError, NotFoundError, ValueError)


@task(
    name="choose-items",
    cache_policy=NO_CACHE,
    retries=0,
    task_run_name="choose-items-{business_slug}",
)
def choose_items(
    database_url: str,
    *,
    business_slug: str,
    external_ids: list[str],
    acting_email: str,
    confirm_new_contacts: bool,
    map_contacts: dict[str, str],
) -> ChosenItems | Refused:
    """Check the member, find the items, apply their contact answers and split the selection.

    A refusal (unknown business, user not a member, unknown external id) is returned, not
    raised: the flow ends Failed with its one line, without a traceback or a retry.
    """
    try:
        # A write session: the member check, the contact choices and their reassessment read
        # and then write while auto-publish may be committing (see tasks.runtime.db).
        with db(database_url, write=True) as session:
            business, _ = business_and_connection(session, business_slug)
            return choose_items_to_publish(
                session,
                business=business,
                external_ids=external_ids,
                acting_email=acting_email,
                confirm_new_contacts=confirm_new_contacts,
                map_contacts=map_contacts,
            )
    except REFUSALS as exc:
        get_run_logger().error("refused: %s", exc)
        return Refused(reason=str(exc))


def not_published(chosen: ChosenItems, summary: BusinessSummary) -> dict[str, str]:
    """Each chosen item the run did not publish (by external id), with why."""
    missed = dict(chosen.not_ready)
    handled: set[uuid.UUID] = set()
    for row in summary.rows:
        handled.add(row.item_id)
        if row.outcome != "published":
            why = why_not_published(row.outcome, row.error_code, row.message)
            missed[chosen.names.get(row.item_id, str(row.item_id))] = why
    stopped = summary.skipped or (f"run stopped: {summary.stopped}" if summary.stopped else None)
    for item_id in chosen.ready:
        if item_id not in handled:
            missed[chosen.names[item_id]] = stopped or "not claimed: another run had taken it"
    return missed


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
    trigger: str,
) -> BusinessSummary:
    """Publish a chosen selection of Ready items batch by batch, then record the run."""
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
    recorded = record_publish_run(  # counted again from the durable attempt rows
        database_url,
        unwalked(summary),
        business_id=business_id,
        trigger=trigger,
        flow_run_id=current_flow_run_id(),
        started_at=started,
    )
    return recorded


def _result(future: PrefectFuture[BatchSummary]) -> BatchSummary | None:
    """The batch's summary, or None when its task run failed."""
    try:
        return future.result()
    except Exception:
        return None


def report_selection(slug: str, *, published: int, asked: int, missed: dict[str, str]) -> str:
    """Publish the selection's artifact (each item not published, with why); returns its line."""
    create_markdown_artifact(
        key=artifact_key("publish-items", slug),
        markdown=selection_markdown(slug, published, asked, missed),
        description=f"Publish items of {slug}: published {published} of {asked}",
    )
    return selection_message(published, asked, missed)
