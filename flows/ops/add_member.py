"""The add-member flow: give a user a role in a business."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.actions import add_business_member
from tasks.runtime import business_run_name


class AddMemberParams(BaseModel):
    """Who joins which business with which role, and who asks."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    user: str = Field(
        title="User's email",
        description="Email of the user to add (they must exist: 'nomi-connector user add').",
    )
    role: Literal["standard", "admin", "accountant"] = Field(
        default="standard",
        title="Role",
        description="admin and accountant manage the business (connection, settings, rules, "
        "members); standard imports, edits and publishes items.",
    )
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)


@flow(
    name="add-member",
    flow_run_name=business_run_name("add-member", default="unknown"),
    persist_result=False,
)
def add_member(params: AddMemberParams) -> str:
    """Add a user to a business with a role, or change their role (admins only, audited).

    Only an admin or accountant of the business may do it; anyone else fails the run in one
    line, and the refusal is audited. The last admin or accountant cannot be made a standard
    member (the business would be left with nobody to manage it). An unknown business or user
    fails the run naming it (close business slugs listed).
    """
    return add_business_member(
        ConnectorSettings().database_url,
        params.business,
        params.user,
        params.role,
        params.acting_user,
    )
