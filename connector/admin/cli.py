"""The ``nomi-connector`` command: database, businesses, users, settings, rules, items, lists.

Settings come from the environment (``NOMI_CONNECTOR_HOME``, ``NOMI_CONNECTOR_DATABASE_URL``,
``NOMI_CONNECTOR_BUSY_TIMEOUT``) or the ``--home``/``--database-url`` options. The command groups
live in ``connector.admin.commands``; errors and exit statuses are those of its ``base`` module.
Importing this module loads neither pandas nor Prefect: the commands needing them import them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import sqlalchemy as sa
import typer

from connector.admin.commands.base import CliState, busy, fail
from connector.admin.commands.connection_settings import settings_app
from connector.admin.commands.connections import connection_app
from connector.admin.commands.contact_rules import rules_app
from connector.admin.commands.corrections import add_correction_commands
from connector.admin.commands.directory import business_app, member_app, user_app
from connector.admin.commands.history import history_app
from connector.admin.commands.items import items_app
from connector.admin.commands.lists import lists_app
from connector.admin.commands.payment_methods import methods_app
from connector.settings import ConnectorSettings
from connector.store.db import is_busy_error, migrate

app = typer.Typer(help="Administer the Nomi connector database.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
for sub, name in [
    (db_app, "db"),
    (business_app, "business"),
    (user_app, "user"),
    (member_app, "member"),
    (settings_app, "settings"),
    (rules_app, "rules"),
    (methods_app, "payment-methods"),
    (items_app, "items"),
    (history_app, "history"),
    (connection_app, "connection"),
    (lists_app, "lists"),
]:
    app.add_typer(sub, name=name)
add_correction_commands(items_app)


def _print_version(asked: bool) -> None:
    """Print the installed version and stop (``--version``)."""
    if asked:
        try:
            installed = version("nomi-connector")
        except PackageNotFoundError:  # run from a checkout that was never installed
            installed = "unknown (not installed)"
        typer.echo(f"nomi-connector {installed}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(None, help="Data folder (env NOMI_CONNECTOR_HOME)."),
    database_url: str | None = typer.Option(
        None, help="Database URL (env NOMI_CONNECTOR_DATABASE_URL)."
    ),
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """Administer the Nomi connector database."""
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        ctx.obj = CliState(ConnectorSettings(**overrides))  # type: ignore[arg-type]
    except ValueError as exc:
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the schema to the latest migration."""
    state: CliState = ctx.obj
    try:
        migrate(state.engine)
    except sa.exc.OperationalError as exc:
        if not is_busy_error(exc):
            raise
        busy(state)
    finally:
        state.engine.dispose()
    typer.echo("database is up to date")
