"""The auto-publish-to-nomi flow: the scheduled sweep publishing every Ready item exactly once."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from blocks.locks import take_publish_locks
from connector.publishing.queue import publish_targets
from connector.rules.vocabulary import RunTrigger
from connector.settings import ConnectorSettings
from tasks.publish import publish_next_batch, recover_stale_claims
from tasks.record import PublishSummary
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits, business_run_name, db, run_trigger
from tasks.sweep import Sweep


class AutoPublishParams(BaseModel):
    """Which businesses to sweep, and how hard."""

    business: str = Field(
        default="", description="Business slug. Empty: every business with auto-publish on."
    )
    after_reconnect: bool = Field(
        default=False,
        description="Also publish the items that waited while the connection was down, even "
        "with auto-publish off (reconnect-to-nomi runs it so after a reconnect).",
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
    ready_event_at: str = Field(
        default="",
        description="Set by the on-ready trigger: when the `nomi.items.ready` event that started "
        "the run occurred (ISO time).",
    )
    settle_seconds: float = Field(
        default=0,
        ge=0,
        le=300,
        description="Keep watching the businesses for items turning Ready until this long after "
        "`ready_event_at`, then publish once more: the trigger drops the events of its window "
        "after starting a run, so this run publishes what they announced (docs/scaling.md). "
        "0: publish what is Ready and stop.",
    )


def watch_end(ready_event_at: str, settle_seconds: float) -> datetime | None:
    """When an on-ready run stops watching: ``settle_seconds`` after the triggering event.

    The on-ready trigger starts at most one run per window (its ``within``) and drops the later
    events of that window: a run that makes a last pass after the window closed sees every item
    those events announced (each is emitted after its commit).
    None when ``settle_seconds`` is 0; an unreadable event time counts as now.
    """
    if settle_seconds <= 0:
        return None
    try:
        occurred = datetime.fromisoformat(ready_event_at.strip())
    except ValueError:
        occurred = datetime.now(UTC)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return min(occurred, datetime.now(UTC)) + timedelta(seconds=settle_seconds)


def batch_backoff(params: AutoPublishParams) -> list[float]:
    """Seconds before each retry of a failed batch: the form's delay, doubling each time."""
    delays = [params.batch_retry_delay_seconds * 2**n for n in range(10)]
    return delays[: max(params.batch_retries, 1)]


@flow(
    name="auto-publish-to-nomi",
    flow_run_name=business_run_name("auto-publish", default="all"),
    # Eight batches (or records) at once; the Nomi requests of all of them share the process's
    # cap (nomi.throttle.PROCESS_IN_FLIGHT, four organisations' worth), so the set-up of some
    # businesses' batches overlaps the others' sending instead of emptying the pipes.
    task_runner=ThreadPoolTaskRunner(max_workers=8),  # type: ignore[arg-type]
)
def auto_publish_to_nomi(params: AutoPublishParams) -> PublishSummary:
    """Publish every Ready item to Nomi, exactly once.

    Sweeps every business with **auto-publish** on and a connected Nomi connection (or the one
    `business`). Cost and sales items are published (expense claims only when a supplier rule
    turns auto-publish on for them); items whose last error is a Nomi rejection wait until someone
    changes them or publishes them with **publish-items-to-nomi**. With `after_reconnect` it
    also publishes the items that waited while the connection was down. History records what
    started the run as Prefect knows it: `schedule`, `automation`, `person` or `reconnect`.

    First gives back claims older than `claim_timeout_minutes` (left by crashed runs), then
    publishes each business in batches: one task run per batch of up to `batch_size` items, one
    batch per business at a time, the next submitted as soon as the last ended (a business
    whose batch took every Ready item it found gets no further batch).
    One run per business at a time (global concurrency limit `nomi-publish-{business}`); a business
    another run is publishing is skipped and said so. A lost connection stops that business
    (connection marked expired, event `nomi.connection.expired`, artifact `reconnect-{business}`).

    Artifacts: a progress bar, `publish-summary-{business}` (published, held and rejected, why),
    `overview-{business}`; event `nomi.publish.finished` per business. Fails when a batch still
    failed after its retries. A business is drained before its slot is given back. Started by
    `nomi.items.ready` (deployment `on-ready`), it publishes at once, watches until
    `settle_seconds` after the event, then passes once more. Returns the totals, and why for
    each item not simply published.
    """
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    trigger = run_trigger(after_reconnect=params.after_reconnect)
    selecting = RunTrigger.RECONNECT if params.after_reconnect else trigger
    with db(url) as session:
        targets = publish_targets(session, params.business or None, selecting)
    free = [t for t in targets if t.skipped is None]
    ids = [t.business_id for t in free]
    summary = PublishSummary(trigger=trigger)
    summary.recovered = recover_stale_claims(url, params.claim_timeout_minutes * 60, ids or None)
    sweep = Sweep(
        url,
        app,
        batch_task=publish_next_batch.with_options(
            retries=params.batch_retries,
            retry_delay_seconds=batch_backoff(params),
        ),
        summary=summary,
        batch_size=params.batch_size,
        limits=params.limits,
        started=started,
        watch_until=watch_end(params.ready_event_at, params.settle_seconds),
    )
    with ExitStack() as locks:
        held = take_publish_locks(
            locks, [t.slug for t in free], wait_seconds=params.lock_wait_seconds
        )
        sweep.publish(sweep.admit(targets, held))
    summary = sweep.finish()
    get_run_logger().info("published %d items", summary.published)
    if summary.failed:
        failed = sorted(s for s, b in summary.businesses.items() if b.failed)
        raise RuntimeError(f"publishing failed after retries for: {', '.join(failed)}")
    return summary.needing_attention()
