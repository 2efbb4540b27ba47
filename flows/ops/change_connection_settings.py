"""The change-connection-settings flow: show a business's settings and change the ones given."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.actions import (
    change_connection_settings as change_settings,
)
from tasks.ops.actions import (
    publish_settings_artifact,
    read_connection_settings,
)
from tasks.runtime import business_run_name

Switch = Literal["unchanged", "on", "off"]
TAX_HELP = (
    "Tax rate by code or name (see the business's tax rates); 'none' clears it; empty leaves "
    "it as it is."
)


class ChangeSettingsParams(BaseModel):
    """Which business, who asks, and the settings to change (empty or unchanged: kept)."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    warn_new_supplier: Switch = Field(
        default="unchanged",
        title="Warn on a new supplier",
        description="Hold items naming a supplier Nomi does not have until someone confirms it.",
    )
    publish_images_with_expense_claims: Switch = Field(
        default="unchanged",
        title="Publish images with expense claims",
        description="Attach the document image to each expense claim published.",
    )
    use_tax_list: Switch = Field(
        default="unchanged",
        title="Use the tax list",
        description="Items carry a tax rate from Nomi's list (item, rule or default).",
    )
    use_supplier_tax_rates: Switch = Field(
        default="unchanged",
        title="Use supplier tax rates",
        description="A supplier's default tax rate in Nomi becomes its rule here.",
    )
    auto_publish: Switch = Field(
        default="unchanged",
        title="Auto-publish",
        description="Ready items publish on their own (the scheduled sweep takes them).",
    )
    default_tax_costs: str = Field(
        default="", title="Default tax rate for costs", description=TAX_HELP
    )
    default_zero_tax_code_costs: str = Field(
        default="", title="Zero tax code for costs", description=TAX_HELP
    )
    default_tax_sales: str = Field(
        default="", title="Default tax rate for sales", description=TAX_HELP
    )
    default_zero_tax_code_sales: str = Field(
        default="", title="Zero tax code for sales", description=TAX_HELP
    )

    def changes(self) -> dict[str, str]:
        """The settings to change, as ``set_settings`` takes them (name -> text)."""
        found: dict[str, str] = {}
        for key, value in self.model_dump(exclude={"business", "acting_user"}).items():
            if value not in ("", "unchanged"):
                found[key] = "true" if value == "on" else "false" if value == "off" else value
        return found


@flow(
    name="change-connection-settings",
    flow_run_name=business_run_name("settings", default="unknown"),
    persist_result=False,
)
def change_connection_settings(params: ChangeSettingsParams) -> str:
    """Show a business's connection settings and change the ones given (admins only, audited).

    The artifact `connection-settings-{business}` shows every setting before this run and now.
    Switches left at *unchanged* and tax defaults left empty stay as they are; with nothing to
    change the run only shows the settings. Tax defaults take a tax rate's code or name from
    the business's mirrored tax rates ('none' clears one); an unknown or ambiguous name fails the
    run naming close matches, and nothing changes. After a change the business's items are
    assessed again (a rejected item whose values changed is published again). The acting user
    must be an admin or accountant of the business: anyone else fails the run, audited.
    """
    url = ConnectorSettings().database_url
    before = read_connection_settings(url, params.business)
    changes = params.changes()
    if not changes:
        publish_settings_artifact(params.business, before, before)
        return f"{params.business}: nothing to change; the settings are in the artifact"
    message = change_settings(url, params.business, params.acting_user, changes)
    publish_settings_artifact(
        params.business, before, read_connection_settings(url, params.business)
    )
    return message
