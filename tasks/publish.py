"""Tasks of auto-publish-to-nomi and publish-items-to-nomi: one task run per batch, never per item.

``publish_next_batch`` claims up to ``batch_size`` Ready items of one business and publishes them on
a few threads sharing one client (``connector.publishing.pipeline``). A transient failure gives
every claim
back and raises ``TransientBatchError`` so Prefect retries the batch with backoff; rejections, held
items, a lost connection and the daily limit are recorded outcomes, not task failures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, Field
from sqlmodel import select

from blocks.app import NomiApp
from connector.connections.consent import mark_connection_expired
from connector.history import records as history
from connector.history.keys import artifact_key
from connector.items.context import build_context
from connector.publishing.batch import publish_batch
from connector.publishing.book import PublishBook
from connector.publishing.outcomes import (
    STOP_CONNECTION_LOST,
    STOP_TRANSIENT,
)
from connector.publishing.queue import (
    Selection,
    claim_next,
    recover_stale,
    select_candidates,
)
from connector.rules.facts import Resolved
from connector.rules.vocabulary import ConnectionStatus
from connector.store.models import Connection
from tasks.events import EVENT_CONNECTION_EXPIRED, EVENT_PUBLISH_FINISHED, emit_connection_event
from tasks.runtime import NomiLimits, db, engine_for, load_credentials, nomi_client, retry_on


class TransientBatchError(RuntimeError):
    """A batch stopped on a transient Nomi failure; its claims were given back (retry it)."""


class ItemRow(BaseModel):
    """One item's outcome in a batch (for the summary artifact)."""

    item_id: uuid.UUID
    outcome: str
    error_code: str | None = None
    message: str | None = None
    image_error: str | None = None
    flags: list[str] = Field(default_factory=list)


class BatchSummary(BaseModel):
    """What one batch did."""

    claimed: int = 0
    rows: list[ItemRow] = Field(default_factory=list)
    stopped: str | None = None
    stop_message: str | None = None
    #: The selection filled the batch, so more items may be waiting. False when the batch took
    #: every candidate there was: another batch in this run would find nothing (items that turn
    #: Ready meanwhile are the next run's).
    more: bool = True

    def count(self, outcome: str) -> int:
        """Items of the batch that ended with ``outcome``."""
        return sum(1 for r in self.rows if r.outcome == outcome)


#: Retry a batch only when it stopped on a transient failure (never on a rejection or bug).
retry_transient_only = retry_on(TransientBatchError)


@task(
    name="recover-stale-claims",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    task_run_name="recover-stale-claims",
)
def recover_stale_claims(
    database_url: str, older_than_seconds: float, business_ids: list[uuid.UUID] | None
) -> int:
    """Give back claims older than the timeout (left by dead runs); returns how many."""
    logger = get_run_logger()
    recovered = 0
    with db(database_url, write=True) as session:  # each recovery reads, then writes attempts
        targets: list[uuid.UUID | None] = list(business_ids) if business_ids else [None]
        for business_id in targets:
            recovered += len(
                recover_stale(
                    session,
                    older_than=timedelta(seconds=older_than_seconds),
                    run_id=uuid.uuid4(),
                    business_id=business_id,
                )
            )
    if recovered:
        logger.warning("gave back %d claims left by dead runs", recovered)
    return recovered


@task(
    name="publish-batch",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient_only,
    task_run_name="publish-{slug}-batch-{batch_no}",
)
def publish_next_batch(
    database_url: str,
    app: NomiApp,
    *,
    business_id: uuid.UUID,
    slug: str,
    run_id: uuid.UUID,
    batch_no: int,
    batch_size: int,
    limits: NomiLimits,
    selection: Selection | None = None,
    item_ids: list[uuid.UUID] | None = None,
    exclude: list[uuid.UUID] | None = None,
) -> BatchSummary:
    """Claim and publish the next batch of one business's Ready items.

    Args:
        database_url: The connector database.
        app: The NomiApp block (loaded once by the flow).
        business_id: The business.
        slug: Its slug (names and events).
        run_id: The run id the claims are made under.
        batch_no: Number of the batch in this run (task run name).
        batch_size: Most items to claim.
        limits: Nomi's per-organisation limits (``concurrent`` items are published at once).
        selection: Which Ready items auto-publish takes (ignored when ``item_ids`` is given).
        item_ids: Exactly these items (publish-items), when Ready.
        exclude: Items already handled by this run.

    Returns:
        The batch's outcomes (empty when nothing was left to claim).

    Raises:
        TransientBatchError: Nomi failed transiently after the client's retries (claims given back).
    """
    logger = get_run_logger()
    done = set(exclude or ())
    engine = engine_for(database_url)
    with db(database_url) as session:
        connection = session.exec(
            select(Connection).where(Connection.business_id == business_id)
        ).first()
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            return BatchSummary(stopped="not_connected", stop_message="not connected to Nomi")
        load_credentials(app, connection)  # before claiming: a missing block claims nothing
        ctx = build_context(session, business_id)
        resolutions: dict[uuid.UUID, Resolved] = {}
        if item_ids is not None:
            candidates = [i for i in item_ids if i not in done]
        else:
            wanted = batch_size + len(done) + 1  # one more than a batch: are there more?
            picked = select_candidates(
                session,
                business_id,
                ctx,
                selection or Selection(),
                limit=wanted,
                resolutions=resolutions,
            )
            candidates = [i for i in picked if i not in done]
        items = claim_next(
            session,
            run_id=run_id,
            business_id=business_id,
            candidates=candidates,
            batch_size=batch_size,
        )
        session.expunge_all()
    if not items:
        return BatchSummary(more=False)
    more = len(candidates) > batch_size
    workers = limits.concurrent or 5
    with nomi_client(app, connection, limits=limits) as nomi:
        result = publish_batch(
            engine,
            nomi,
            items,
            run_id,
            ctx,
            book=PublishBook(connection.id),
            workers=workers,
            resolved=resolutions,
        )
    summary = BatchSummary(
        claimed=len(items),
        rows=[
            ItemRow(
                item_id=o.item_id,
                outcome=o.outcome,
                error_code=o.error_code,
                message=o.message,
                image_error=o.image_error,
                flags=list(o.flags),
            )
            for o in result.outcomes
        ],
        stopped=result.stopped,
        stop_message=result.stop_message,
        more=more,
    )
    logger.info(
        "%s batch %d: %d claimed, %d published, %d held, %d rejected, %d given back%s",
        slug,
        batch_no,
        len(items),
        summary.count("published"),
        summary.count("held"),
        summary.count("rejected"),
        summary.count("given_back"),
        f" (stopped: {result.stopped})" if result.stopped else "",
    )
    if result.stopped == STOP_CONNECTION_LOST:
        _connection_lost(database_url, business_id, slug, result.stop_message or "")
    if result.stopped == STOP_TRANSIENT:
        raise TransientBatchError(
            f"{slug} batch {batch_no} stopped on a transient Nomi failure: {result.stop_message}"
        )
    return summary


def _connection_lost(database_url: str, business_id: uuid.UUID, slug: str, message: str) -> None:
    """Mark the connection expired, emit ``nomi.connection.expired`` and tell ops to reconnect."""
    with db(database_url, write=True) as session:
        mark_connection_expired(session, business_id, message)
    emit_connection_event(EVENT_CONNECTION_EXPIRED, slug, {"business": slug, "reason": message})
    create_markdown_artifact(
        key=artifact_key("reconnect", slug),
        markdown=(
            f"# Nomi connection of `{slug}` expired\n\n"
            f"Publishing stopped: {message}\n\n"
            "Items stay **Ready** (error `connection_expired`). Run **reconnect-to-nomi** for "
            "this business; it publishes what waited once the connection is back.\n"
        ),
        description=f"Reconnect {slug} to Nomi",
    )
    get_run_logger().error("%s: Nomi connection expired; items stay ready", slug)


class BusinessSummary(BaseModel):
    """What one publish run did for one business."""

    business: str
    run_id: uuid.UUID
    claimed: int = 0
    published: int = 0
    held: int = 0
    rejected: int = 0
    given_back: int = 0
    batches: int = 0
    failed: bool = False
    stopped: str | None = None
    skipped: str | None = None
    rows: list[ItemRow] = Field(default_factory=list, exclude=True)

    def add(self, batch: BatchSummary) -> None:
        """Fold one batch into the totals."""
        self.batches += 1
        self.claimed += batch.claimed
        self.published += batch.count("published")
        self.held += batch.count("held")
        self.rejected += batch.count("rejected")
        self.given_back += batch.count("given_back")
        self.rows.extend(batch.rows)
        self.stopped = batch.stopped or self.stopped

    def count_published(self, published: set[uuid.UUID]) -> None:
        """Take the published count from the durable attempt rows (``history.published_in_run``).

        A batch try that stopped on a transient failure raised, so its results never reached
        ``add``; Prefect's retry reported only what it did itself (issue 15: 54 published items
        showed as 30). The items published by a lost try are added as claimed and published.
        """
        seen = {r.item_id for r in self.rows}
        lost = published - seen
        self.claimed += len(lost)
        self.rows.extend(ItemRow(item_id=i, outcome="published") for i in sorted(lost))
        self.published = len(published)


@task(name="record-publish-run", cache_policy=NO_CACHE, task_run_name="record-{summary.business}")
def record_publish_run(
    database_url: str,
    summary: BusinessSummary,
    *,
    business_id: uuid.UUID,
    trigger: str,
    flow_run_id: uuid.UUID | None,
    started_at: datetime,
) -> BusinessSummary:
    """Append the PublishRun row, publish the summary table and emit ``nomi.publish.finished``.

    The published count (and the claimed count) are first taken from the run's durable attempt
    rows, so they include items published by a batch try that failed and was retried.

    Returns:
        The summary as recorded.
    """
    summary = summary.model_copy(deep=True)
    if summary.skipped is None:
        # A read of its own: a SQLite read transaction that then writes cannot wait for the
        # lock ("database is locked" at once) while other businesses still publish.
        with db(database_url) as session:
            summary.count_published(history.published_in_run(session, summary.run_id))
    with db(database_url) as session:
        history.record_publish_run(
            session,
            id=summary.run_id,
            flow_run_id=flow_run_id,
            trigger=trigger,
            business_id=business_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            claimed=summary.claimed,
            published=summary.published,
            failed=summary.rejected + (1 if summary.failed else 0),
            held=summary.held,
            skipped=summary.given_back + (1 if summary.skipped else 0),
        )
    table = [
        {
            "item": str(r.item_id),
            "outcome": r.outcome,
            "why": r.message or r.image_error or "; ".join(r.flags) or "",
            "code": r.error_code or "",
        }
        for r in summary.rows
        if r.outcome != "published" or r.image_error or r.flags
    ]
    head = {
        "item": "(totals)",
        "outcome": f"published {summary.published}, held {summary.held}, "
        f"rejected {summary.rejected}, given back {summary.given_back}",
        "why": summary.skipped or summary.stopped or ("batch failed" if summary.failed else ""),
        "code": trigger,
    }
    create_table_artifact(
        table=[head, *table],
        key=artifact_key("publish-summary", summary.business),
        description=f"Publish run {summary.run_id} for {summary.business}",
    )
    emit_connection_event(EVENT_PUBLISH_FINISHED, summary.business, summary.model_dump(mode="json"))
    return summary
