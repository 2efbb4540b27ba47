"""``settings`` commands: show and change a business's connection settings."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import (
    BUSINESS_HELP,
    database,
    echo,
    fail,
    reassess,
    show,
    shown_id,
)
from connector.admin.connection_settings import (
    BOOL_SETTINGS,
    TAX_SETTINGS,
    get_settings,
    set_settings,
)
from connector.admin.lookup import labels
from connector.admin.users import get_actor
from connector.rules.vocabulary import ListName

settings_app = typer.Typer(help="Connection settings (admins only).", no_args_is_help=True)


@settings_app.command("show")
def settings_show(
    ctx: typer.Context, business: str = typer.Option(..., "--business", help=BUSINESS_HELP)
) -> None:
    """Show a business's connection settings (tax defaults by code and name, then id)."""
    with database(ctx, write=False) as db:
        target = get_business(db, business)
        settings = get_settings(db, target)
        taxes = labels(db, target, ListName.TAX_RATES)
        for key in BOOL_SETTINGS:
            echo(f"{key} = {show(getattr(settings, key))}")
        for key in TAX_SETTINGS:
            nomi_id = getattr(settings, key)
            echo(f"{key} = {shown_id(taxes.get(nomi_id or ''), nomi_id)}")


@settings_app.command("set")
def settings_set(
    ctx: typer.Context,
    changes: list[str] = typer.Argument(
        ...,
        help="KEY=VALUE pairs: switches take true or false; tax defaults a tax-rate code, name "
        "or Nomi id (see lists tax-rates), or none.",
    ),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(
        ..., "--actor", help="Email of the admin or accountant making the change (audited)."
    ),
) -> None:
    """Change settings (the actor must be an admin or accountant of the business)."""
    pairs: dict[str, str] = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            fail(f"expected KEY=VALUE, got {change!r}")
        pairs[key.strip()] = value
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        set_settings(
            db,
            business=target,
            actor=get_actor(db, actor, business=target, action="settings.set"),
            changes=pairs,
        )
        retried = reassess(db, target.id)
        echo(f"updated {', '.join(pairs)} for {business}{retried}")
