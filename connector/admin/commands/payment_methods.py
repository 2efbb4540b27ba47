"""``payment-methods`` commands: add, link, remove and list (admins and accountants; audited)."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import BUSINESS_HELP, database, echo, reassess, table
from connector.admin.lookup import label_of, labels
from connector.admin.payment_methods import (
    add_payment_method,
    link_payment_method,
    list_payment_methods,
    remove_payment_method,
)
from connector.admin.users import get_actor
from connector.rules.vocabulary import ListName

methods_app = typer.Typer(help="Payment methods.", no_args_is_help=True)

ACTOR_HELP = "Email of the admin or accountant making the change (audited)."
NAME_HELP = "The payment method's name (as import files name it; any case)."
BANK_HELP = "Bank account name, masked number or Nomi id (see lists bank-accounts)."


@methods_app.command("add")
def methods_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    bank_account: str | None = typer.Option(
        None, help=f"{BANK_HELP} Paid items are paid from it; default none."
    ),
    actor: str = typer.Option(..., "--actor", help=ACTOR_HELP),
) -> None:
    """Add a payment method (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        add_payment_method(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="payment_methods.add"),
            name=name,
            bank_account_nomi_id=bank_account,
        )
        echo(f"payment method {name!r} added")


@methods_app.command("link")
def methods_link(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    bank_account: str = typer.Option(
        ..., help=f"{BANK_HELP} none unlinks it (paid items then publish unpaid)."
    ),
    actor: str = typer.Option(..., "--actor", help=ACTOR_HELP),
) -> None:
    """Link a payment method to another Nomi bank account (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        method = link_payment_method(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="payment_methods.link"),
            name=name,
            bank_account_nomi_id=bank_account,
        )
        retried = reassess(db, target.id)
        bank = label_of(db, target, ListName.BANK_ACCOUNTS, method.bank_account_nomi_id)
        linked = f"linked to bank account {bank}" if bank else "no longer linked to a bank account"
        echo(f"payment method {method.name!r} {linked}{retried}")


@methods_app.command("remove")
def methods_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(..., "--actor", help=ACTOR_HELP),
) -> None:
    """Remove a payment method no rule or item uses (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        remove_payment_method(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="payment_methods.remove"),
            name=name,
        )
        echo(f"payment method {name!r} removed")


@methods_app.command("list")
def methods_list(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line instead of tab-separated columns."
    ),
) -> None:
    """List payment methods and the bank account each is paid from."""
    with database(ctx, write=False) as db:
        target = get_business(db, business)
        banks = labels(db, target, ListName.BANK_ACCOUNTS)
        rows = [
            (m.name, banks.get(m.bank_account_nomi_id or ""), m.bank_account_nomi_id)
            for m in list_payment_methods(db, target)
        ]
        table(("name", "bank_account", "bank_account_id"), rows, as_json=as_json)
