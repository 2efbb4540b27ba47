"""The release-duplicate flow: an item held as a possible duplicate is not one (by external id)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.corrections import release_held_duplicate
from tasks.runtime import business_run_name


class ReleaseDuplicateParams(BaseModel):
    """Which held item is not a duplicate, and who says so."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    item: str = Field(
        title="Item (external id)",
        description="The held item's external id, as 'items list' shows it (bs-0004); its "
        "review reason names the item it looks like.",
    )


@flow(
    name="release-duplicate",
    flow_run_name=business_run_name("release-duplicate", default="unknown"),
    persist_result=False,
)
def release_duplicate(params: ReleaseDuplicateParams) -> str:
    """Release an item held as a possible duplicate (admins and accountants, audited).

    The item is held in review with "possible duplicate of {external id}"; releasing it says it
    is not one: the pair is remembered and never asked about again, and the item is assessed
    again (Ready when nothing else holds it, then published as any Ready item). An item that is
    a duplicate is archived with **archive-item** instead. Not held as a duplicate, unknown, or
    an acting user who may not: the run fails in one line and nothing changes.
    """
    result = release_held_duplicate(
        ConnectorSettings().database_url, params.business, params.item, params.acting_user
    )
    held = f"; still held: {'; '.join(result.review_reasons)}" if result.review_reasons else ""
    return f"{result.external_id}: released ({', '.join(result.others)}); {result.status}{held}"
