"""The ``nomi-connector`` command: database, businesses, users, settings, rules and items.

Settings come from the environment (``NOMI_CONNECTOR_HOME``, ``NOMI_CONNECTOR_DATABASE_URL``,
``NOMI_CONNECTOR_BUSY_TIMEOUT``) or the ``--home``/``--database-url`` options. User errors print one
clear line and exit with status 1; a database another writer keeps busy for longer than the busy
timeout prints one line and exits with status 75 (``BUSY_EXIT``: try again). Text from the database
or the command line is printed through ``connector.text_guard.printable``: a control character
never reaches the terminal raw.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.admin import crud
from connector.errors import NotConnectedError
from connector.history.export import export_attempts
from connector.history.queries import ReportWindow
from connector.items.choices import reassess_after_change
from connector.items.edits import edit_item
from connector.items.intake import IntakeError, import_items
from connector.rules.vocabulary import ItemStatus
from connector.settings import ConnectorSettings
from connector.store.db import is_busy_error, make_engine, migrate, session
from connector.store.models import Item
from connector.text_guard import printable

app = typer.Typer(help="Administer the Nomi connector database.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
business_app = typer.Typer(help="Businesses.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
member_app = typer.Typer(
    help="Who belongs to which business, with which role.", no_args_is_help=True
)
settings_app = typer.Typer(help="Connection settings (admins only).", no_args_is_help=True)
rules_app = typer.Typer(help="Supplier and customer rules.", no_args_is_help=True)
methods_app = typer.Typer(help="Payment methods.", no_args_is_help=True)
items_app = typer.Typer(help="Items to publish.", no_args_is_help=True)
history_app = typer.Typer(help="Publish run history.", no_args_is_help=True)
connection_app = typer.Typer(
    help="Nomi connections (runs the flow here: needs the Prefect API).", no_args_is_help=True
)
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
]:
    app.add_typer(sub, name=name)

USER_ERRORS = (
    ValueError,
    LookupError,
    PermissionDeniedError,
    IntakeError,
)
BUSY_EXIT = 75  # EX_TEMPFAIL: nothing was changed, the same command can simply be run again


class _State:
    """The settings chosen on the command line (built once per invocation)."""

    def __init__(self, settings: ConnectorSettings) -> None:
        self.settings = settings
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine, built on first use."""
        if self._engine is None:
            self._engine = make_engine(
                self.settings.database_url, busy_timeout=self.settings.busy_timeout
            )
        return self._engine


@app.callback()
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(None, help="Data folder (env NOMI_CONNECTOR_HOME)."),
    database_url: str | None = typer.Option(
        None, help="Database URL (env NOMI_CONNECTOR_DATABASE_URL)."
    ),
) -> None:
    """Administer the Nomi connector database."""
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        ctx.obj = _State(ConnectorSettings(**overrides))  # type: ignore[arg-type]
    except ValueError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(code)


def _echo(*values: object, sep: str = "\t") -> None:
    """Print values (escaped: see ``printable``) joined by ``sep``: one line of output."""
    typer.echo(sep.join(printable(_show(v)) for v in values))


def _busy(state: _State) -> None:
    """Say in one line that the database stayed busy, and exit with ``BUSY_EXIT``."""
    _fail(
        f"the database is busy: another writer (an import, a publish run) held it for more "
        f"than {state.settings.busy_timeout:g} s; nothing was changed, run the command again "
        "(NOMI_CONNECTOR_BUSY_TIMEOUT sets the wait)",
        BUSY_EXIT,
    )


@contextmanager
def _db(ctx: typer.Context, *, write: bool) -> Iterator[Session]:
    """A committed-on-success session; user errors become one line and exit status 1.

    ``write``: the command reads and then writes. Its transactions then start as writes, so it
    waits its turn while a publish run commits instead of failing with "database is locked".
    A database that stays busy longer than the busy timeout becomes one line and ``BUSY_EXIT``.
    """
    state: _State = ctx.obj
    try:
        with session(state.engine, write=write) as db:
            yield db
    except USER_ERRORS as exc:
        _fail(str(exc))
    except sa.exc.OperationalError as exc:
        if not is_busy_error(exc):
            raise
        _busy(state)
    finally:
        state.engine.dispose()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the schema to the latest migration."""
    state: _State = ctx.obj
    try:
        migrate(state.engine)
    except sa.exc.OperationalError as exc:
        if not is_busy_error(exc):
            raise
        _busy(state)
    finally:
        state.engine.dispose()
    typer.echo("database is up to date")


@business_app.command("add")
def business_add(ctx: typer.Context, slug: str, name: str = typer.Option(..., "--name")) -> None:
    """Add a business."""
    with _db(ctx, write=True) as db:
        business = crud.add_business(db, slug=slug, name=name)
        _echo(f"added business {business.slug} ({business.id})")


@business_app.command("list")
def business_list(ctx: typer.Context) -> None:
    """List businesses."""
    with _db(ctx, write=False) as db:
        for business in crud.list_businesses(db):
            _echo(business.slug, business.name, business.id)


@user_app.command("add")
def user_add(ctx: typer.Context, email: str, name: str = typer.Option(..., "--name")) -> None:
    """Add a user."""
    with _db(ctx, write=True) as db:
        user = crud.add_user(db, email=email, name=name)
        _echo(f"added user {user.email} ({user.id})")


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business", help="Business slug."),
    user: str = typer.Option(..., "--user", help="User email."),
    role: str = typer.Option(..., "--role", help="admin, standard or accountant."),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help="Email of an admin or accountant of the business (not needed for the first admin "
        "of a new business).",
    ),
) -> None:
    """Give a user a role in a business (an admin or accountant of it must be the actor)."""
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        member = crud.add_member(
            db,
            business=target,
            user=crud.get_user(db, user),
            role=role,
            actor=crud.get_actor(db, actor, business=target, action="members.add")
            if actor
            else None,
        )
        _echo(f"{user} is {member.role} of {business}")


@settings_app.command("show")
def settings_show(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """Show a business's connection settings."""
    with _db(ctx, write=False) as db:
        settings = crud.get_settings(db, crud.get_business(db, business))
        for key in crud.BOOL_SETTINGS + crud.TAX_SETTINGS:
            _echo(f"{key} = {_show(getattr(settings, key))}")


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
            _fail(f"expected KEY=VALUE, got {change!r}")
        pairs[key.strip()] = value
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        crud.set_settings(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="settings.set"),
            changes=pairs,
        )
        retried = _reassess(db, target.id)
        _echo(f"updated {', '.join(pairs)} for {business}{retried}")


def _reassess(db: Session, business_id: uuid.UUID) -> str:
    """Reassess after a rules or settings change; says how many rejected items go again.

    A business not connected yet has nothing to reassess against: its items are assessed once
    its lists are mirrored.
    """
    try:
        _, retried = reassess_after_change(db, business_id)
    except NotConnectedError:
        return ""
    return f" ({retried} item(s) Nomi had rejected will be published again)" if retried else ""


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
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        method = crud.get_payment_method(db, target, payment_method) if payment_method else None
        crud.add_rule(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="rules.add"),
            kind=kind,
            name=name,
            category_nomi_id=category,
            tax_rate_nomi_id=tax_rate,
            payment_method_id=method.id if method else None,
            description=description,
            paid=paid,
            auto_publish=auto_publish,
        )
        retried = _reassess(db, target.id)
        _echo(f"{kind} rule for {name!r} saved{retried}")


@rules_app.command("remove")
def rules_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supplier or customer name."),
    business: str = typer.Option(..., "--business"),
    kind: str = typer.Option("supplier", "--kind", help="supplier or customer."),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
) -> None:
    """Remove a supplier or customer rule (admins and accountants; audited)."""
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        crud.remove_rule(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="rules.remove"),
            kind=kind,
            name=name,
        )
        retried = _reassess(db, target.id)
        _echo(f"{kind} rule for {name!r} removed{retried}")


@rules_app.command("list")
def rules_list(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """List supplier and customer rules."""
    with _db(ctx, write=False) as db:
        for rule in crud.list_rules(db, crud.get_business(db, business)):
            _echo(
                rule.kind,
                rule.name,
                f"category={_show(rule.category_nomi_id)}",
                f"tax_rate={_show(rule.tax_rate_nomi_id)}",
                f"paid={_show(rule.paid)}",
                f"source={rule.source}",
            )


@methods_app.command("add")
def methods_add(
    ctx: typer.Context,
    name: str,
    business: str = typer.Option(..., "--business"),
    bank_account: str | None = typer.Option(None, help="Nomi bank-account id."),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
) -> None:
    """Add a payment method (admins and accountants; audited)."""
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        crud.add_payment_method(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="payment_methods.add"),
            name=name,
            bank_account_nomi_id=bank_account,
        )
        _echo(f"payment method {name!r} added")


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
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        method = crud.link_payment_method(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="payment_methods.link"),
            name=name,
            bank_account_nomi_id=bank_account,
        )
        retried = _reassess(db, target.id)
        bank = method.bank_account_nomi_id
        linked = f"linked to bank account {bank}" if bank else "no longer linked to a bank account"
        _echo(f"payment method {method.name!r} {linked}{retried}")


@methods_app.command("remove")
def methods_remove(
    ctx: typer.Context,
    name: str,
    business: str = typer.Option(..., "--business"),
    actor: str = typer.Option(..., "--actor", help="Email of the admin making the change."),
) -> None:
    """Remove a payment method no rule or item uses (admins and accountants; audited)."""
    with _db(ctx, write=True) as db:
        target = crud.get_business(db, business)
        crud.remove_payment_method(
            db,
            business=target,
            actor=crud.get_actor(db, actor, business=target, action="payment_methods.remove"),
            name=name,
        )
        _echo(f"payment method {name!r} removed")


@methods_app.command("list")
def methods_list(ctx: typer.Context, business: str = typer.Option(..., "--business")) -> None:
    """List payment methods."""
    with _db(ctx, write=False) as db:
        for method in crud.list_payment_methods(db, crud.get_business(db, business)):
            _echo(method.name, f"bank_account={_show(method.bank_account_nomi_id)}")


@items_app.command("import")
def items_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .csv or .jsonl file (see docs/intake.md)."),
    business: str = typer.Option(..., "--business"),
    actor: str = typer.Option(..., "--actor", help="Email of the member importing (audited)."),
) -> None:
    """Import items (any member; audited); bad rows are listed by line and field, good rows kept."""
    state: _State = ctx.obj
    with _db(ctx, write=False) as db:  # import_items takes its own short write transactions
        target = crud.get_business(db, business)
        report = import_items(
            db, file, business_id=target.id, actor_email=actor, images_dir=state.settings.images_dir
        )
    typer.echo(
        f"imported {len(report.imported)}, already present {len(report.duplicates)}, "
        f"refused {report.refused} of {report.rows} rows"
    )
    for error in report.errors:
        typer.echo(f"  {printable(str(error))}", err=True)
    if report.unlisted:
        typer.echo(f"  ... and {report.unlisted} more problem(s) not listed", err=True)
    if report.refused:
        raise typer.Exit(1)


@items_app.command("list")
def items_list(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business"),
    status: str | None = typer.Option(None, help="review, ready, publishing, published, archived."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List a business's items."""
    if status is not None and status not in {s.value for s in ItemStatus}:
        _fail(f"unknown status {status!r}")
    with _db(ctx, write=False) as db:
        target = crud.get_business(db, business)
        query = select(Item).where(Item.business_id == target.id)
        if status is not None:
            query = query.where(Item.status == status)
        for item in db.exec(query.order_by(Item.created_at, Item.external_id)):  # type: ignore[arg-type]
            row = {
                "external_id": item.external_id,
                "kind": item.kind,
                "status": item.status,
                "contact": item.contact_name,
                "date": item.date.isoformat() if item.date else None,
                "currency": item.currency,
                "total": str(item.total) if item.total is not None else None,
                "reasons": item.review_reasons,
            }
            if as_json:
                typer.echo(json.dumps(row))  # JSON escapes control characters itself
            else:
                _echo(*row.values())


@items_app.command("edit")
def items_edit(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The item's external id (see items list)."),
    business: str = typer.Option(..., "--business"),
    actor: str = typer.Option(..., "--actor", help="Email of the member making the edit."),
    category: str | None = typer.Option(
        None, help="Nomi category id for this item; none clears it (the rules decide again)."
    ),
    tax_rate: str | None = typer.Option(
        None, help="Nomi tax-rate id for this item (use_tax_list on); none clears it."
    ),
) -> None:
    """Set the category or tax rate on one item (it wins over rules); the item is reassessed."""
    changes = {
        key: value
        for key, value in (("category", category), ("tax_rate", tax_rate))
        if value is not None
    }
    with _db(ctx, write=True) as db:
        result = edit_item(
            db,
            business=crud.get_business(db, business),
            external_id=external_id,
            actor_email=actor,
            changes=changes,
        )
    _echo(
        f"{result.external_id}: {result.status}; category={_show(result.category_id)} "
        f"tax_rate={_show(result.tax_rate_id)}"
    )
    for reason in result.review_reasons:
        _echo(f"  {reason}")
    if result.rejection_cleared:
        typer.echo("  Nomi's last rejection cleared: the next auto-publish run takes it again")


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    since: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="First day (UTC)."),
    until: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Last day (UTC), included; default today."
    ),
    business: str | None = typer.Option(None, help="Business slug; default every business."),
    fmt: str = typer.Option(..., "--format", help="csv or parquet."),
    output: Path = typer.Option(..., help="File to write (replaced)."),
) -> None:
    """Export one row per publish attempt (columns in docs/history.md)."""
    state: _State = ctx.obj
    if fmt not in ("csv", "parquet"):
        _fail(f"unknown format {fmt!r} (csv or parquet)")
    try:
        last = until.date() if until else datetime.now(UTC).date()
        window = ReportWindow(since=since.date(), until=last, business=business)
        rows = export_attempts(state.engine, window, output, fmt=fmt)  # type: ignore[arg-type]
    except USER_ERRORS as exc:
        _fail(str(exc))
    finally:
        state.engine.dispose()
    typer.echo(f"exported {rows} attempts ({window.since} to {window.until}) to {output}")


@connection_app.command("disconnect")
def connection_disconnect(
    ctx: typer.Context,
    business: str = typer.Argument(..., help="Slug of the business to disconnect."),
    actor: str = typer.Option(..., "--actor", help="Email of the admin or accountant asking."),
    app_block: str = typer.Option("nomi", "--app-block", help="Name of the NomiApp block."),
) -> None:
    """Disconnect a business from Nomi: revoke its tokens, delete them, stop publish and sync.

    Runs the disconnect-from-nomi flow in this process (PREFECT_API_URL must reach the Prefect
    server). Settings, rules, items and history are kept. When Nomi cannot be reached the
    business is disconnected all the same and this exits 1 saying so: run it again to retry the
    revoke at Nomi.
    """
    import os

    from flows.disconnect_from_nomi import DisconnectParams, disconnect_from_nomi

    state: _State = ctx.obj
    params = DisconnectParams(business=business, acting_user=actor, app_block=app_block)
    key = "NOMI_CONNECTOR_DATABASE_URL"  # the flow reads its settings from the environment
    before = os.environ.get(key)
    os.environ[key] = state.settings.database_url
    try:
        final = disconnect_from_nomi(params, return_state=True)
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before
    if not final.is_completed():
        _fail(_flow_error(final.message))
    typer.echo(final.result())


def _flow_error(message: str | None) -> str:
    """A failed run's message without Prefect's preamble."""
    text = message or "the run failed"
    _, sep, rest = text.partition("encountered an exception: ")
    return rest if sep else text


def _show(value: object) -> str:
    """A value for display."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "-"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)
