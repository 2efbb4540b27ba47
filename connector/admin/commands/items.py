"""``items`` commands: import, list, edit, release and archive a business's items.

Intake and item edits (which reach into publishing) are imported inside their commands, so that
``nomi-connector --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import select

from connector.admin.businesses import get_business
from connector.admin.commands.base import BUSINESS_HELP, CliState, database, echo, show, table
from connector.rules.vocabulary import ItemStatus
from connector.store.models import Item
from connector.text_guard import printable

items_app = typer.Typer(help="Items to publish.", no_args_is_help=True)


@items_app.command("import")
def items_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .csv or .jsonl file (see docs/intake.md)."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(..., "--actor", help="Email of the member importing (audited)."),
) -> None:
    """Import items (any member; audited); bad rows are listed by line and field, good rows kept."""
    from connector.items.intake import import_items

    state: CliState = ctx.obj
    with database(ctx, write=False) as db:  # import_items takes its own short write transactions
        target = get_business(db, business)
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


#: The columns of ``items list``.
ITEM_COLUMNS = ("external_id", "kind", "status", "contact", "date", "currency", "total", "reasons")


@items_app.command("list")
def items_list(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    status: ItemStatus | None = typer.Option(
        None, case_sensitive=False, help="Only items in this status (default: every item)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line instead of tab-separated columns."
    ),
) -> None:
    """List a business's items (external id first: what edits and publish selections take)."""
    with database(ctx, write=False) as db:
        target = get_business(db, business)
        query = select(Item).where(Item.business_id == target.id)
        if status is not None:
            query = query.where(Item.status == status.value)
        items = db.exec(query.order_by(Item.created_at, Item.external_id))  # type: ignore[arg-type]
        rows = (
            (
                item.external_id,
                item.kind,
                item.status,
                item.contact_name,
                item.date.isoformat() if item.date else None,
                item.currency,
                str(item.total) if item.total is not None else None,
                item.review_reasons,
            )
            for item in items
        )
        table(ITEM_COLUMNS, rows, as_json=as_json)


@items_app.command("edit")
def items_edit(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The item's external id (see items list)."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(..., "--actor", help="Email of the member making the edit."),
    category: str | None = typer.Option(
        None,
        help="Category code, name or Nomi id (see lists categories); none clears it and the "
        "rules decide again.",
    ),
    tax_rate: str | None = typer.Option(
        None,
        help="Tax-rate code, name or Nomi id (see lists tax-rates; needs use_tax_list on); "
        "none clears it.",
    ),
) -> None:
    """Set the category or tax rate on one item (it wins over rules); the item is reassessed."""
    from connector.items.edits import edit_item

    changes = {
        key: value
        for key, value in (("category", category), ("tax_rate", tax_rate))
        if value is not None
    }
    with database(ctx, write=True) as db:
        result = edit_item(
            db,
            business=get_business(db, business),
            external_id=external_id,
            actor_email=actor,
            changes=changes,
        )
    echo(
        f"{result.external_id}: {result.status}; category {show(result.category)}, "
        f"tax rate {show(result.tax_rate)}"
    )
    for reason in result.review_reasons:
        echo(f"  {reason}")
    if result.rejection_cleared:
        typer.echo("  Nomi's last rejection cleared: the next auto-publish run takes it again")


ACTING_USER_HELP = "Email of the admin or accountant acting (audited)."


@items_app.command("release")
def items_release(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The held item's external id (see items list)."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(..., "--acting-user", "--actor", help=ACTING_USER_HELP),
) -> None:
    """Release an item held as a possible duplicate: it is not one (never held again for them)."""
    from connector.admin.item_holds import release_duplicate

    with database(ctx, write=True) as db:
        result = release_duplicate(
            db, business=get_business(db, business), external_id=external_id, actor_email=actor
        )
    echo(f"{result.external_id}: {result.status}; not a duplicate of {', '.join(result.others)}")
    for reason in result.review_reasons:
        echo(f"  {reason}")


@items_app.command("archive")
def items_archive(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The item's external id (see items list)."),
    business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
    actor: str = typer.Option(..., "--acting-user", "--actor", help=ACTING_USER_HELP),
) -> None:
    """Archive an item that was never published: no run will ever publish it."""
    from connector.admin.item_holds import archive_item

    with database(ctx, write=True) as db:
        result = archive_item(
            db, business=get_business(db, business), external_id=external_id, actor_email=actor
        )
    echo(f"{result.external_id}: {result.status}")
    if result.others:
        echo(f"  assessed again: {', '.join(result.others)}")
