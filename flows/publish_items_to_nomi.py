"""The publish-items-to-nomi flow: publish a chosen selection of items now (or re-run failures)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.settings import ConnectorSettings
from tasks.record import BusinessSummary
from tasks.runtime import DEFAULT_APP_BLOCK, NomiLimits, run_trigger
from tasks.sweep import Refused, choose_items, not_published, publish_chosen, report_selection


class PublishItemsParams(BaseModel):
    """The items to publish, who asks, and their answer to the new-supplier warning."""

    business: str = Field(description="Business slug.")
    external_ids: list[str] = Field(
        min_length=1,
        description="External ids of the items to publish, as `items list` shows them "
        "(Ready ones are published).",
    )
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
    """What happened to the selection: totals, and each item not published (external id: why)."""

    summary: BusinessSummary
    not_ready: dict[str, str] = Field(default_factory=dict)
    not_published: dict[str, str] = Field(default_factory=dict)
    message: str = ""


@flow(
    name="publish-items-to-nomi",
    flow_run_name="publish-items-{params.business}",
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
)
def publish_items_to_nomi(params: PublishItemsParams) -> PublishItemsResult:
    """Publish the chosen items of one business to Nomi now, named by their external ids.

    The acting user must be a member of the business. Ready items are published exactly once
    (the same pipeline as auto-publish, including items whose last attempt was rejected: this
    is how a failure is re-run after fixing it). Items held because their supplier is new are
    published when `confirm_new_contacts` is on (the supplier is created) or their contact name
    is in `map_contacts` (mapped to that Nomi contact); both answers are written to the audit
    log.

    The run ends **Completed** with a line such as `published 3 of 5; not published: ux-003
    (in review: no category), ux-004 (rejected by Nomi (LOCK_DATE): ...)`; the artifact
    `publish-items-<business>` lists every item not published and why. A refusal (unknown
    business, a user who is not a member, an external id the business does not have) ends the
    run **Failed** with one line saying so, before anything is published, and is never retried.
    """
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    started = datetime.now(UTC)
    chosen = choose_items(
        url,
        business_slug=params.business,
        external_ids=params.external_ids,
        acting_email=params.acting_user,
        confirm_new_contacts=params.confirm_new_contacts,
        map_contacts=params.map_contacts,
    )
    if isinstance(chosen, Refused):
        # A state, not an exception: one readable line, no traceback, nothing to retry.
        return cast(PublishItemsResult, Failed(message=f"refused: {chosen.reason}"))
    summary = publish_chosen(
        url,
        app,
        business_id=chosen.business_id,
        slug=params.business,
        ready=chosen.ready,
        batch_size=params.batch_size,
        limits=params.limits,
        started=started,
        trigger=run_trigger(),
    )
    missed = not_published(chosen, summary)
    message = report_selection(
        params.business, published=summary.published, asked=len(chosen.names), missed=missed
    )
    get_run_logger().info("%s: %s", params.business, message)
    result = PublishItemsResult(
        summary=summary, not_ready=chosen.not_ready, not_published=missed, message=message
    )
    # The state's message is what the run list shows; the result is what a caller gets.
    return cast(PublishItemsResult, Completed(message=message, data=result))
