"""``items correct`` and ``items void``: correct or archive a published item, running its flow.

Both need the Prefect API (the Nomi app and the business's credentials are Prefect blocks), as
``connection disconnect`` does; the flows are imported inside the commands so that
``nomi-connector --help`` stays quick. ``add_correction_commands`` adds them to ``items``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from connector.admin.commands.base import BUSINESS_HELP, CliState, fail
from connector.admin.commands.connections import flow_error

ACTOR_HELP = "Email of the admin or accountant asking (audited)."


@contextmanager
def _database_env(state: CliState) -> Iterator[None]:
    """The flow reads its database from the environment: point it at this command's."""
    key = "NOMI_CONNECTOR_DATABASE_URL"
    before = os.environ.get(key)
    os.environ[key] = state.settings.database_url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _run(ctx: typer.Context, flow: Callable[..., Any], params: Any) -> None:
    """Run ``flow`` here; a refusal or failure is one line on stderr and exit status 1."""
    with _database_env(ctx.obj):
        final = flow(params, return_state=True)
    if not final.is_completed():
        fail(flow_error(final.message))
    typer.echo(final.result())


def items_correct(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The published item's external id."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    acting_user: str = typer.Option(..., "--acting-user", "--actor", help=ACTOR_HELP),
    category: str | None = typer.Option(None, help="New category: code, name or Nomi id."),
    tax_rate: str | None = typer.Option(None, help="New tax rate: code, name or Nomi id."),
    total: str | None = typer.Option(None, help="New total (e.g. 144.00)."),
    tax: str | None = typer.Option(None, help="New tax amount (e.g. 24.00)."),
    contact: str | None = typer.Option(
        None, help="Another supplier (costs) or customer (sales) of the mirrored lists, by name."
    ),
    app_block: str = typer.Option("nomi", "--app-block", help="Name of the NomiApp block."),
) -> None:
    """Correct a published item: Nomi voids its record, then the corrected one is published.

    Refused, with Nomi's reason and nothing changed, in a locked period or for an invoice with
    payments. Runs the correct-item flow in this process (PREFECT_API_URL must reach Prefect).
    """
    from flows.correct_item import CorrectItemParams, correct_item

    params = CorrectItemParams(
        business=business,
        external_id=external_id,
        acting_user=acting_user,
        category=category or "",
        tax_rate=tax_rate or "",
        total=total or "",
        tax=tax or "",
        contact=contact or "",
        app_block=app_block,
    )
    if not params.changes():
        fail("nothing to change: give --category, --tax-rate, --total, --tax or --contact")
    _run(ctx, correct_item, params)


def items_void(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The published item's external id."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    acting_user: str = typer.Option(..., "--acting-user", "--actor", help=ACTOR_HELP),
    app_block: str = typer.Option("nomi", "--app-block", help="Name of the NomiApp block."),
) -> None:
    """Archive a published item: Nomi voids its record and it is never published again.

    Runs the archive-item flow in this process (PREFECT_API_URL must reach Prefect).
    """
    from flows.archive_item import ArchiveItemParams, archive_item

    params = ArchiveItemParams(
        business=business, external_id=external_id, acting_user=acting_user, app_block=app_block
    )
    _run(ctx, archive_item, params)


def add_correction_commands(items_app: typer.Typer) -> None:
    """Add ``correct``, ``void`` and its alias ``archive-published`` to the ``items`` group."""
    items_app.command("correct")(items_correct)
    items_app.command("void")(items_void)
    items_app.command("archive-published")(items_void)
