"""``rules`` commands: supplier and customer rules (admins and accountants; audited)."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import database, echo, reassess, show
from connector.admin.contact_rules import add_rule, list_rules, remove_rule
from connector.admin.payment_methods import get_payment_method
from connector.admin.users import get_actor

rules_app = typer.Typer(help="Supplier and customer rules.", no_args_is_help=True)


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supplier or customer name."),
    business: str = typer.Option(..., "--business"),
    kind: str = typer.Option("supplier", "--kind", help="supplier or customer."),
    category: str | None = typer.Option(None, help="Nomi category id."),
    tax_rate: str | None = typer.Option(None, help="Nomi tax-rate id."),
    payment_method: str | None = typer.Option(None, help="Payment method name."),
    description: str | None = typer.Option(None),
    paid: bool | None = typer.Option(None, "--paid/--unpaid"),
    auto_publish: bool | None = typer.Option(None, "--auto-publish/--no-auto-publish"),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
) -> None:
    """Add or replace a supplier or customer rule (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        method = get_payment_method(db, target, payment_method) if payment_method else None
        add_rule(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="rules.add"),
            kind=kind,
            name=name,
            category_nomi_id=category,
            tax_rate_nomi_id=tax_rate,
            payment_method_id=method.id if method else None,
            description=description,
            paid=paid,
            auto_publish=auto_publish,
        )
        retried = reassess(db, target.id)
        echo(f"{kind} rule for {name!r} saved{retried}")


@rules_app.command("remove")
def rules_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supplier or customer name."),
    business: str = typer.Option(..., "--business"),
    kind: str = typer.Option("supplier", "--kind", help="supplier or customer."),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
) -> None:
    """Remove a supplier or customer rule (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        remove_rule(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="rules.remove"),
            kind=kind,
            name=name,
        )
        retried = reassess(db, target.id)
        echo(f"{kind} rule for {name!r} removed{retried}")


@rules_app.command("list")
def rules_list(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """List supplier and customer rules."""
    with database(ctx, write=False) as db:
        for rule in list_rules(db, get_business(db, business)):
            echo(
                rule.kind,
                rule.name,
                f"category={show(rule.category_nomi_id)}",
                f"tax_rate={show(rule.tax_rate_nomi_id)}",
                f"paid={show(rule.paid)}",
                f"source={rule.source}",
            )
