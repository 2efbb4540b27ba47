"""``settings`` commands: show and change a business's connection settings."""

from __future__ import annotations

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import database, echo, fail, reassess, show
from connector.admin.connection_settings import (
    BOOL_SETTINGS,
    TAX_SETTINGS,
    get_settings,
    set_settings,
)
from connector.admin.users import get_actor

settings_app = typer.Typer(help="Connection settings (admins only).", no_args_is_help=True)


@settings_app.command("show")
def settings_show(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """Show a business's connection settings."""
    with database(ctx, write=False) as db:
        settings = get_settings(db, get_business(db, business))
        for key in BOOL_SETTINGS + TAX_SETTINGS:
            echo(f"{key} = {show(getattr(settings, key))}")


@settings_app.command("set")
def settings_set(
    ctx: typer.Context,
    changes: list[str] = typer.Argument(..., help="KEY=VALUE pairs."),
    business: str = typer.Option(..., "--business"),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
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
