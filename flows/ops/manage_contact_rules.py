"""The manage-contact-rules flow: set or remove a supplier's or customer's rule."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.actions import remove_contact_rule, set_contact_rule
from tasks.runtime import business_run_name

Choice = Literal["not set", "yes", "no"]


class ContactRuleParams(BaseModel):
    """The rule to set or remove (empty fields: the rule does not set them)."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    action: Literal["set", "remove"] = Field(
        default="set",
        title="Action",
        description="set: create the rule or replace it whole; remove: delete the rule.",
    )
    kind: Literal["supplier", "customer"] = Field(
        default="supplier",
        title="Kind",
        description="Whose rule: a supplier's (cost items, expense claims) or a customer's "
        "(sales items).",
    )
    name: str = Field(
        title="Supplier or customer name",
        description="The name as items give it (case, spaces and 'Ltd' do not matter).",
    )
    category: str = Field(
        default="",
        title="Category",
        description="Category by code or name (see the business's categories); empty: not set.",
    )
    tax_rate: str = Field(
        default="",
        title="Tax rate",
        description="Tax rate by code or name (see the business's tax rates); empty: not set.",
    )
    payment_method: str = Field(
        default="",
        title="Payment method",
        description="A payment method of the business, by name; empty: not set.",
    )
    description: str = Field(
        default="",
        title="Description",
        description="What the contact's items publish with when theirs is empty; empty: not set.",
    )
    paid: Choice = Field(
        default="not set",
        title="Paid",
        description="Whether the contact's items are paid already (yes or no).",
    )
    auto_publish: Choice = Field(
        default="not set",
        title="Auto-publish",
        description="Whether the contact's Ready items publish on their own (yes or no).",
    )

    def fields(self) -> dict[str, Any]:
        """The rule's values as ``add_rule`` takes them (what is not set is None)."""
        return {
            "category_nomi_id": self.category.strip() or None,
            "tax_rate_nomi_id": self.tax_rate.strip() or None,
            "description": self.description.strip() or None,
            "paid": None if self.paid == "not set" else self.paid == "yes",
            "auto_publish": None if self.auto_publish == "not set" else self.auto_publish == "yes",
        }


@flow(
    name="manage-contact-rules",
    flow_run_name=business_run_name("contact-rule", default="unknown"),
    persist_result=False,
)
def manage_contact_rules(params: ContactRuleParams) -> str:
    """Set or remove a supplier or customer rule (admins and accountants only, audited).

    A rule says what a contact's items publish as: category, tax rate (by code or name from the
    business's mirrored lists), payment method (by name), description, paid, auto-publish.
    *set* creates the rule or replaces it whole (fields left empty are not set by it); *remove*
    deletes it (rules that come from Nomi's suppliers are not removed here: they follow Nomi and
    the use_supplier_tax_rates setting). The business's items are then assessed again. An
    unknown category, tax rate or payment method, or an acting user who is not an admin or
    accountant, fails the run in one line naming the problem (close matches listed), and
    nothing changes.
    """
    url = ConnectorSettings().database_url
    if params.action == "remove":
        return remove_contact_rule(
            url, params.business, params.acting_user, params.kind, params.name
        )
    return set_contact_rule(
        url,
        params.business,
        params.acting_user,
        params.kind,
        params.name,
        params.fields(),
        params.payment_method.strip(),
    )
