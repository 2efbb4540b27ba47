"""Tasks of auto-publish-to-nomi and publish-items-to-nomi: one task run per batch, never per item.

``publish_next_batch`` claims up to ``batch_size`` Ready items of one business and publishes them on
a few threads sharing one client (``connector.publishing.pipeline``). A transient failure gives
every claim
back and raises ``TransientBatchError`` so Prefect retries the batch with backoff; rejections, held
items, a lost connection and the daily limit are recorded outcomes, not task failures.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, Field
from sqlmodel import select

from blocks.app import NomiApp
from connector.connections.consent import mark_connection_expired
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
from nomi.throttle import PROCESS_IN_FLIGHT
from tasks.events import (
    EVENT_CONNECTION_EXPIRED,
    emit_connection_event,
)
from tasks.runtime import NomiLimits, db, engine_for, load_credentials, nomi_client, retry_on

SPARE_THREADS = 2
"""Publishing threads of a batch beyond the tenant's ``concurrent`` (they wait on its throttle)."""

_LANES: dict[int, threading.BoundedSemaphore] = {}
_LANES_LOCK = threading.Lock()


def sending_lane(concurrent: int) -> threading.BoundedSemaphore:
    """The process's lanes for batches at ``concurrent`` requests each: as many as fill its cap.

    A batch claims and prepares without one, then sends its items holding one: at most
    ``PROCESS_IN_FLIGHT // concurrent`` batches send at once, each at its tenant's full
    concurrency, while the run's other task threads prepare the next businesses. Without lanes
    every prepared batch shared the cap, all finished together and the next ones' set-up left
    the pipes empty.
    """
    lanes = max(1, PROCESS_IN_FLIGHT // max(1, concurrent))
    with _LANES_LOCK:
        return _LANES.setdefault(lanes, threading.BoundedSemaphore(lanes))


class HeldLane:
    """One batch's hold on a sending lane: taken on entry, given back once (early or on exit)."""

    def __init__(self, lane: threading.BoundedSemaphore) -> None:
        self._lane = lane
        self._held = False
        self._lock = threading.Lock()

    def __enter__(self) -> HeldLane:
        self._lane.acquire()
        self._held = True
        return self

    def release(self) -> None:
        """Give the lane back, if this batch still holds it."""
        with self._lock:
            if self._held:
                self._held = False
                self._lane.release()

    def __exit__(self, *exc: object) -> None:
        self.release()


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

    @property
    def needs_attention(self) -> bool:
        """Not simply published: the summary artifact lists it, with why."""
        return self.outcome != "published" or bool(self.image_error or self.flags)


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
    # More threads than requests in flight: the tenant's throttle lets ``concurrent`` requests
    # out at once, and the spare threads resolve, plan and record their next items meanwhile, so
    # the pipes never wait for that work (docs/performance.md, eighth session).
    concurrent = limits.concurrent or 5
    # The lane goes back once the last item started: the next batch sends while this one's
    # last requests and writes finish (the process's cap still bounds the requests in flight).
    with (
        HeldLane(sending_lane(concurrent)) as lane,
        nomi_client(app, connection, limits=limits) as nomi,
    ):
        result = publish_batch(
            engine,
            nomi,
            items,
            run_id,
            ctx,
            book=PublishBook(connection.id),
            workers=concurrent + SPARE_THREADS,
            resolved=resolutions,
            on_all_started=lane.release,
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
