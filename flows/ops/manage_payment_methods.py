"""The manage-payment-methods flow: add, link or remove a business's payment method."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import ADMIN_ACTOR_HELP, BUSINESS_HELP
from tasks.ops.actions import ActionRefusedError, change_payment_method
from tasks.runtime import business_run_name


class PaymentMethodParams(BaseModel):
    """The payment method, what to do with it, and the bank account it is paid from."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=ADMIN_ACTOR_HELP)
    action: Literal["add", "link", "remove"] = Field(
        default="add",
        title="Action",
        description="add: a new payment method; link: pay it from another bank account (or "
        "none); remove: delete one that no rule or item uses.",
    )
    name: str = Field(
        title="Payment method name",
        description="As import files name it (any case), e.g. Company card.",
    )
    bank_account: str = Field(
        default="",
        title="Bank account",
        description="The Nomi bank account paid items are paid from, by name or masked number "
        "(see the business's bank accounts); 'none' for no account. Empty: none when adding; "
        "needed to link.",
    )


@flow(
    name="manage-payment-methods",
    flow_run_name=business_run_name("payment-method", default="unknown"),
    persist_result=False,
)
def manage_payment_methods(params: PaymentMethodParams) -> str:
    """Add, link or remove a payment method (admins and accountants only, audited).

    A payment method decides which Nomi bank account a paid item is paid from. *add* creates one
    (optionally linked to a bank account named as the business's mirrored bank accounts name
    it); *link* moves it to another account, or to none (paid items then publish unpaid), and
    assesses the business's items again; *remove* deletes one nothing uses (a rule or item using
    it is named and it stays). An unknown bank account or payment method, or an acting user who
    is not an admin or accountant, fails the run in one line (close matches listed); nothing
    changes.
    """
    if params.action == "link" and not params.bank_account.strip():
        raise ActionRefusedError(
            f"linking payment method {params.name!r} needs a bank account (or 'none' to unlink)"
        )
    return change_payment_method(
        ConnectorSettings().database_url,
        params.business,
        params.acting_user,
        params.action,
        params.name,
        params.bank_account,
    )
