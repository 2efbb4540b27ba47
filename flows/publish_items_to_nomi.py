"""The publish-items-to-nomi flow: publish a chosen selection of items now (or re-run failures)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field
from sqlmodel import col, select

from blocks.app import NomiApp
from connector.items.assess import reassess
from connector.publishing.queue import apply_contact_choices, require_member
from connector.rules.vocabulary import ItemStatus
from connector.settings import ConnectorSettings
from connector.store.models import Item
from tasks.publish import BusinessSummary, publish_next_batch, record_publish_run
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits, business_and_connection, db, unwalked


class PublishItemsParams(BaseModel):
    """The items to publish, who asks, and their answer to the new-supplier warning."""

    business: str = Field(description="Business slug.")
    item_ids: list[uuid.UUID] = Field(description="Items to publish (Ready ones are published).")
    acting_user: str = Field(description="Email of the member asking (any role may publish).")
    confirm_new_contacts: bool = Field(
        default=False, description="Create the new suppliers these items name (audited)."
    )
    map_contacts: dict[str, str] = Field(
        default_factory=dict,
        description="Contact name -> existing Nomi contact id to use instead (audited).",
    )
    app_block: str = Field(default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block.")
    batch_size: int = Field(default=200, ge=1, le=1000, description="Items per task run.")
    limits: NomiLimits = Field(
        default_factory=NomiLimits, description="Nomi's per-organisation limits."
    )


class PublishItemsResult(BaseModel):
    """What happened to the selection: totals, and items that were not Ready (with why)."""

    summary: BusinessSummary
    not_ready: dict[str, str] = Field(default_factory=dict)


@flow(
    name="publish-items-to-nomi",
    flow_run_name="publish-items-{params.business}",
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
)
def publish_items_to_nomi(params: PublishItemsParams) -> PublishItemsResult:
    """Publish the chosen items of one business to Nomi now.

    The acting user must be a member of the business. Ready items are published exactly once
    (the same pipeline as auto-publish, including items whose last attempt was rejected: this
    is how a failure is re-run after fixing it). Items held because their supplier is new are
    published when `confirm_new_contacts` is on (the supplier is created) or their contact name
    is in `map_contacts` (mapped to that Nomi contact); both answers are written to the audit
    log. Items that are not Ready are reported with their reasons, not published.
    """
    logger = get_run_logger()
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    # A write session: the member check, the contact choices and their reassessment read and
    # then write while auto-publish may be committing (see tasks.runtime.db).
    with db(url, write=True) as session:
        business, _ = business_and_connection(session, params.business)
        user = require_member(
            session, business_id=business.id, email=params.acting_user, action="publish.items"
        )
        changed = apply_contact_choices(
            session,
            business_id=business.id,
            item_ids=params.item_ids,
            user_id=user.id,
            confirm_new_contacts=params.confirm_new_contacts,
            map_contacts=params.map_contacts,
        )
        if changed:
            reassess(session, business_id=business.id, item_ids=changed)
            session.commit()
        rows = session.exec(
            select(Item).where(col(Item.id).in_(params.item_ids), Item.business_id == business.id)
        ).all()
        found = {item.id: item for item in rows}
        not_ready = {
            str(i): _why_not(found.get(i))
            for i in params.item_ids
            if i not in found or found[i].status != ItemStatus.READY
        }
        ready = [i for i in params.item_ids if str(i) not in not_ready]
        business_id = business.id
    summary = BusinessSummary(business=params.business, run_id=uuid.uuid4())
    done: list[uuid.UUID] = []
    while ready:
        batch = publish_next_batch(
            url,
            app,
            business_id=business_id,
            slug=params.business,
            run_id=summary.run_id,
            batch_no=summary.batches + 1,  # counts the batches that ended
            batch_size=params.batch_size,
            limits=params.limits,
            item_ids=unwalked(ready),
            exclude=unwalked(done),
        )
        summary.add(batch)
        done.extend(r.item_id for r in batch.rows)
        handled = set(done)
        ready = [i for i in ready if i not in handled]
        if not batch.claimed or batch.stopped is not None:
            break
    summary = record_publish_run(  # counted again from the durable attempt rows
        url,
        unwalked(summary),
        business_id=business_id,
        trigger="manual",
        flow_run_id=uuid.UUID(str(flow_run.id)) if flow_run.id else None,
        started_at=started,
    )
    logger.info(
        "%s: published %d of %d chosen items; %d not ready",
        params.business,
        summary.published,
        len(params.item_ids),
        len(not_ready),
    )
    return PublishItemsResult(summary=summary, not_ready=not_ready)


def _why_not(item: Item | None) -> str:
    """Why an item of the selection is not published."""
    if item is None:
        return "no such item in this business"
    if item.status == ItemStatus.REVIEW:
        return "in review: " + "; ".join(item.review_reasons or ["not assessed"])
    return f"status is {item.status}"
