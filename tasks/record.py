"""The record of one business's publish run: its summary, the PublishRun row and what ops are told.

``record_publish_run`` runs on the task runner as soon as a business is done (other businesses may
still be publishing): it counts from the durable attempt rows, appends the run, publishes the
summary artifact, tells ops of rejections and rewrites the business's overview.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from connector.connections.attention import external_ids
from connector.history import records as history
from connector.history.keys import artifact_key
from tasks.events import (
    EVENT_ITEMS_REJECTED,
    EVENT_PUBLISH_FINISHED,
    MAX_NAMED_ITEMS,
    emit_business_event,
    emit_connection_event,
)
from tasks.overview import write_overview
from tasks.publish import BatchSummary, ItemRow
from tasks.runtime import db


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

    def needing_attention(self) -> PublishSummary:
        """This summary as the flow returns it: every total, and the rows of the items that were
        not simply published (held, rejected, given back, or published with an image error or a
        flag); the published ones are in history (``history.published_in_run``).

        Prefect walks a flow's return value for futures, every field of every row: for 10,000
        published items that was 0.9 s of CPU at the end of the run (docs/performance.md).
        """
        return self.model_copy(
            update={
                "businesses": {
                    slug: business.model_copy(
                        update={"rows": [r for r in business.rows if r.needs_attention]}
                    )
                    for slug, business in self.businesses.items()
                }
            }
        )


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
    rows, so they include items published by a batch try that failed and was retried. Then the
    business's overview is rewritten (a business the run skipped keeps its own): here, on the
    task runner while other businesses still publish, not one after another when all are done.

    Returns:
        The summary as recorded.
    """
    # The caller's summary stays as it was: ``count_published`` sets the counts and extends the
    # rows, so a copy with its own row list will do (a deep copy of every row was ~1% of the
    # publishing process's CPU, and no row is changed).
    summary = summary.model_copy(update={"rows": list(summary.rows)})
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
        if r.needs_attention
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
    _tell_rejections(database_url, summary)
    if summary.skipped is None:
        write_overview(database_url, summary.business)
    return summary


def _tell_rejections(database_url: str, summary: BusinessSummary) -> None:
    """Emit ``nomi.items.rejected`` once for the run when Nomi rejected some of its items."""
    rejected = [r for r in summary.rows if r.outcome == "rejected"]
    if not rejected:
        return
    with db(database_url) as session:
        names = external_ids(session, [r.item_id for r in rejected[:MAX_NAMED_ITEMS]])
    items = [
        {
            "external_id": names.get(r.item_id, str(r.item_id)),
            "code": r.error_code or "",
            "reason": r.message or "",
        }
        for r in rejected[:MAX_NAMED_ITEMS]
    ]
    payload = {"business": summary.business, "count": len(rejected), "items": items}
    emit_business_event(
        EVENT_ITEMS_REJECTED, summary.business, payload | {"run_id": str(summary.run_id)}
    )
