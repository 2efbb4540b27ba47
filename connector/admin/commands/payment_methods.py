"""``payment-methods`` commands: add, link, remove and list (admins and accountants; audited)."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import database, echo, reassess, show
from connector.admin.payment_methods import (
    add_payment_method,
    link_payment_method,
    list_payment_methods,
    remove_payment_method,
)
from connector.admin.users import get_actor

methods_app = typer.Typer(help="Payment methods.", no_args_is_help=True)


@methods_app.command("add")
def methods_add(
    ctx: typer.Context,
    name: str,
    business: str = typer.Option(..., "--business"),
    bank_account: str | None = typer.Option(None, help="Nomi bank-account id."),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
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
    name: str,
    business: str = typer.Option(..., "--business"),
    bank_account: str = typer.Option(
        ..., help="Nomi bank-account id, or none to unlink (paid items then publish unpaid)."
    ),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
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
        bank = method.bank_account_nomi_id
        linked = f"linked to bank account {bank}" if bank else "no longer linked to a bank account"
        echo(f"payment method {method.name!r} {linked}{retried}")


@methods_app.command("remove")
def methods_remove(
    ctx: typer.Context,
    name: str,
    business: str = typer.Option(..., "--business"),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
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
def methods_list(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """List payment methods."""
    with database(ctx, write=False) as db:
        for method in list_payment_methods(db, get_business(db, business)):
            echo(method.name, f"bank_account={show(method.bank_account_nomi_id)}")
