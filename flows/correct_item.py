"""The correct-item flow: correct a published item and re-publish it to Nomi as a new generation."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.corrections import correct_published_item
from tasks.runtime import DEFAULT_APP_BLOCK, run_param


class CorrectItemParams(BaseModel):
    """Which published item to correct, what to change, and who asks (empty: left as it is)."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    external_id: str = Field(
        title="Item (external id)",
        description="The published item's external id, as 'items list' shows it (bs-0004).",
    )
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    category: str = Field(
        default="", title="Category", description="New category by code or name; empty: as is."
    )
    tax_rate: str = Field(
        default="", title="Tax rate", description="New tax rate by code or name; empty: as is."
    )
    total: str = Field(default="", title="Total", description="New total (144.00); empty: as is.")
    tax: str = Field(default="", title="Tax", description="New tax amount (24.00); empty: as is.")
    contact: str = Field(
        default="",
        title="Supplier or customer",
        description="Another supplier (costs) or customer (sales) by name; empty: as is.",
    )
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK,
        title="Nomi app block",
        description="Name of the NomiApp block (Nomi app registration).",
    )

    def changes(self) -> dict[str, str]:
        """The fields given, as ``correct_item`` takes them."""
        fields = ("category", "tax_rate", "total", "tax", "contact")
        return {f: v.strip() for f in fields if (v := getattr(self, f)).strip()}


def _run_name() -> str:
    """``correct-<external id>``."""
    return f"correct-{run_param('external_id') or 'item'}"


@flow(name="correct-item", flow_run_name=_run_name, persist_result=False, retries=0)
def correct_item(params: CorrectItemParams) -> str:
    """Correct a published item (admins and accountants of the business only, audited).

    Nomi first voids the item's current record; only then is the edit applied and the item
    published again as a new record (its image and payment go with it). The item keeps both
    record ids. **Refused** (the run fails, nothing changed) when the record is in a locked
    period (`period_locked`), is an invoice with payments (`has_payments`), the edit would not
    leave the item ready, or another run holds the item. If Nomi fails midway the item waits as
    Ready and the next auto-publish run finishes the correction under the same keys.
    """
    url = ConnectorSettings().database_url
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    result = correct_published_item(
        url, app, params.business, params.external_id, params.acting_user, params.changes()
    )
    message = (
        f"{result.external_id}: {result.outcome} as generation {result.record_generation} "
        f"(Nomi record {result.nomi_record_id}; voided {', '.join(result.voided_record_ids)})"
    )
    get_run_logger().info(message)
    return message
