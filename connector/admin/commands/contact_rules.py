"""``rules`` commands: supplier and customer rules (admins and accountants; audited)."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import BUSINESS_HELP, database, echo, reassess, table
from connector.admin.contact_rules import add_rule, list_rules, remove_rule
from connector.admin.lookup import labels
from connector.admin.payment_methods import get_payment_method, list_payment_methods
from connector.admin.users import get_actor
from connector.rules.vocabulary import ContactKind, ListName

rules_app = typer.Typer(help="Supplier and customer rules.", no_args_is_help=True)

ACTOR_HELP = "Email of the admin or accountant making the change (audited)."
KIND_HELP = "Whose rule: a supplier's (cost items, expense claims) or a customer's (sales)."
#: The columns of ``rules list``.
RULE_COLUMNS = (
    "kind",
    "name",
    "category",
    "category_id",
    "tax_rate",
    "tax_rate_id",
    "payment_method",
    "description",
    "paid",
    "auto_publish",
    "source",
)


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supplier or customer name."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    kind: ContactKind = typer.Option(
        ContactKind.SUPPLIER, "--kind", case_sensitive=False, help=KIND_HELP
    ),
    category: str | None = typer.Option(
        None, help="Category code, name or Nomi id (see lists categories)."
    ),
    tax_rate: str | None = typer.Option(
        None, help="Tax-rate code, name or Nomi id (see lists tax-rates)."
    ),
    payment_method: str | None = typer.Option(
        None, help="Payment method name (see payment-methods list)."
    ),
    description: str | None = typer.Option(
        None, help="Description the contact's items publish with (when theirs is empty)."
    ),
    paid: bool | None = typer.Option(
        None, "--paid/--unpaid", help="Whether the contact's items are paid already."
    ),
    auto_publish: bool | None = typer.Option(
        None,
        "--auto-publish/--no-auto-publish",
        help="Whether the contact's Ready items publish on their own.",
    ),
    actor: str = typer.Option(..., "--actor", help=ACTOR_HELP),
) -> None:
    """Add or replace a supplier or customer rule (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        method = get_payment_method(db, target, payment_method) if payment_method else None
        add_rule(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="rules.add"),
            kind=kind.value,
            name=name,
            category_nomi_id=category,
            tax_rate_nomi_id=tax_rate,
            payment_method_id=method.id if method else None,
            description=description,
            paid=paid,
            auto_publish=auto_publish,
        )
        retried = reassess(db, target.id)
        echo(f"{kind.value} rule for {name!r} saved{retried}")


@rules_app.command("remove")
def rules_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supplier or customer name."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    kind: ContactKind = typer.Option(
        ContactKind.SUPPLIER, "--kind", case_sensitive=False, help=KIND_HELP
    ),
    actor: str = typer.Option(..., "--actor", help=ACTOR_HELP),
) -> None:
    """Remove a supplier or customer rule (admins and accountants; audited)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        remove_rule(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="rules.remove"),
            kind=kind.value,
            name=name,
        )
        retried = reassess(db, target.id)
        echo(f"{kind.value} rule for {name!r} removed{retried}")


@rules_app.command("list")
def rules_list(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line instead of tab-separated columns."
    ),
) -> None:
    """List supplier and customer rules (categories and tax rates by code and name, and id)."""
    with database(ctx, write=False) as db:
        target = get_business(db, business)
        categories = labels(db, target, ListName.CATEGORIES)
        taxes = labels(db, target, ListName.TAX_RATES)
        methods = {m.id: m.name for m in list_payment_methods(db, target)}
        rows = [
            (
                rule.kind,
                rule.name,
                categories.get(rule.category_nomi_id or ""),
                rule.category_nomi_id,
                taxes.get(rule.tax_rate_nomi_id or ""),
                rule.tax_rate_nomi_id,
                methods.get(rule.payment_method_id) if rule.payment_method_id else None,
                rule.description,
                rule.paid,
                rule.auto_publish,
                rule.source,
            )
            for rule in list_rules(db, target)
        ]
        table(RULE_COLUMNS, rows, as_json=as_json)
