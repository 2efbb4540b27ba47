"""The auto-publish-to-nomi flow: the scheduled sweep publishing every Ready item exactly once."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from blocks.locks import take_publish_locks
from connector.publishing.queue import publish_targets
from connector.settings import ConnectorSettings
from tasks.publish import publish_next_batch, recover_stale_claims
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits, business_run_name, db
from tasks.sweep import PublishSummary, Sweep


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
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    with db(url) as session:
        targets = publish_targets(session, params.business, params.trigger)
    ids = [t.business_id for t in targets if t.skipped is None]
    summary = PublishSummary(trigger=params.trigger)
    summary.recovered = recover_stale_claims(url, params.claim_timeout_minutes * 60, ids or None)
    sweep = Sweep(
        url,
        app,
        batch_task=publish_next_batch.with_options(
            retries=params.batch_retries,
            retry_delay_seconds=[params.batch_retry_delay_seconds * 2**n for n in range(10)][
                : max(params.batch_retries, 1)
            ],
        ),
        summary=summary,
        batch_size=params.batch_size,
        limits=params.limits,
        started=started,
    )
    with ExitStack() as locks:
        held = take_publish_locks(
            locks,
            [t.slug for t in targets if t.skipped is None],
            wait_seconds=params.lock_wait_seconds,
        )
        sweep.publish(sweep.admit(targets, held))
    summary = sweep.finish()
    get_run_logger().info("published %d items", summary.published)
    if summary.failed:
        failed = sorted(s for s, b in summary.businesses.items() if b.failed)
        raise RuntimeError(f"publishing failed after retries for: {', '.join(failed)}")
    return summary
