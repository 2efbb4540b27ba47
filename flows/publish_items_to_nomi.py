"""The publish-items-to-nomi flow: publish a chosen selection of items now (or re-run failures)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.settings import ConnectorSettings
from tasks.publish import BusinessSummary
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits
from tasks.sweep import choose_items, publish_chosen


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
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    chosen = choose_items(
        url,
        business_slug=params.business,
        item_ids=params.item_ids,
        acting_email=params.acting_user,
        confirm_new_contacts=params.confirm_new_contacts,
        map_contacts=params.map_contacts,
    )
    summary = publish_chosen(
        url,
        app,
        business_id=chosen.business_id,
        slug=params.business,
        ready=chosen.ready,
        batch_size=params.batch_size,
        limits=params.limits,
        started=started,
    )
    get_run_logger().info(
        "%s: published %d of %d chosen items; %d not ready",
        params.business,
        summary.published,
        len(params.item_ids),
        len(chosen.not_ready),
    )
    return PublishItemsResult(summary=summary, not_ready=chosen.not_ready)
