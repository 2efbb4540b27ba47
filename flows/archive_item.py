"""The archive-item flow: archive an item for good (a published one's Nomi record voided first)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.corrections import archive_if_unpublished, archive_item_at_nomi
from tasks.runtime import DEFAULT_APP_BLOCK, run_param


class ArchiveItemParams(BaseModel):
    """Which item to archive, and who asks."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    external_id: str = Field(
        title="Item (external id)",
        description="The item's external id, as 'items list' shows it (bs-0004).",
    )
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK,
        title="Nomi app block",
        description="Name of the NomiApp block (Nomi app registration).",
    )


def _run_name() -> str:
    """``archive-<external id>``."""
    return f"archive-{run_param('external_id') or 'item'}"


@flow(name="archive-item", flow_run_name=_run_name, persist_result=False, retries=0)
def archive_item(params: ArchiveItemParams) -> str:
    """Archive an item: it is never published again; a published one is voided in Nomi first.

    Admins and accountants of the business only (audited). An item never published is archived
    here without calling Nomi (the later items held as its possible duplicates are assessed
    again). A published item's record is voided in Nomi first; **refused** (the run fails,
    nothing changed) when it is in a locked period (`period_locked`) or is an invoice with
    payments (`has_payments`). An item a run is publishing now is refused: try again after it.
    """
    url = ConnectorSettings().database_url
    archived = archive_if_unpublished(url, params.business, params.external_id, params.acting_user)
    if archived is not None:
        message = f"{archived.external_id}: archived (never published, Nomi not called)"
        get_run_logger().info(message)
        return message
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    result = archive_item_at_nomi(url, app, params.business, params.external_id, params.acting_user)
    message = f"{result.external_id}: archived; Nomi voided {', '.join(result.voided_record_ids)}"
    get_run_logger().info(message)
    return message
