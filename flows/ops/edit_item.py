"""The edit-item flow: set the category or tax rate of one item, named by its external id."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import BUSINESS_HELP, MEMBER_ACTOR_HELP
from tasks.ops.actions import edit_one_item
from tasks.runtime import business_run_name


class EditItemParams(BaseModel):
    """Which item, what to set on it, and who edits it (empty fields: left as they are)."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=MEMBER_ACTOR_HELP)
    item: str = Field(
        title="Item (external id)",
        description="The item's external id, as the import file and 'items list' show it "
        "(bs-0004).",
    )
    category: str = Field(
        default="",
        title="Category",
        description="Category by code or name (see the business's categories); 'none' clears "
        "it and the rules decide again; empty: left as it is.",
    )
    tax_rate: str = Field(
        default="",
        title="Tax rate",
        description="Tax rate by code or name (needs the use_tax_list setting on); 'none' "
        "clears it; empty: left as it is.",
    )

    def changes(self) -> dict[str, str]:
        """What ``edit_item`` changes: the fields given."""
        given = {"category": self.category.strip(), "tax_rate": self.tax_rate.strip()}
        return {key: value for key, value in given.items() if value}


@flow(
    name="edit-item",
    flow_run_name=business_run_name("edit-item", default="unknown"),
    persist_result=False,
)
def edit_item(params: EditItemParams) -> str:
    """Set the category or tax rate of one item (any member of the business, audited).

    The item is named by its external id; the category and tax rate by code or name from the
    business's mirrored lists ('none' clears an edit and the rules decide again). What is set on
    the item wins over every rule. Only items in review or ready can be edited. The item is then
    assessed again: the run's result says its status and why it is still held, if it is; an
    item Nomi had rejected that is Ready again is published by the next auto-publish run. An
    unknown item, category or tax rate fails the run in one line listing close matches, and
    nothing changes; so does an acting user who is not a member.
    """
    result = edit_one_item(
        ConnectorSettings().database_url,
        params.business,
        params.acting_user,
        params.item,
        params.changes(),
    )
    held = f"; held: {'; '.join(result.review_reasons)}" if result.review_reasons else ""
    again = "; Nomi's last rejection cleared" if result.rejection_cleared else ""
    return (
        f"{result.external_id}: {result.status}; category {result.category or '-'}, "
        f"tax rate {result.tax_rate or '-'}{held}{again}"
    )
