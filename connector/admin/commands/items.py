"""``items`` commands: import, list and edit a business's items.

Intake and item edits (which reach into publishing) are imported inside their commands, so that
``nomi-connector --help`` stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlmodel import select

from connector.admin.businesses import get_business
from connector.admin.commands.base import CliState, database, echo, fail, show
from connector.rules.vocabulary import ItemStatus
from connector.store.models import Item
from connector.text_guard import printable

items_app = typer.Typer(help="Items to publish.", no_args_is_help=True)


@items_app.command("import")
def items_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .csv or .jsonl file (see docs/intake.md)."),
    business: str = typer.Option(..., "--business"),
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


@items_app.command("list")
def items_list(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business"),
    status: str | None = typer.Option(None, help="review, ready, publishing, published, archived."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List a business's items."""
    if status is not None and status not in {s.value for s in ItemStatus}:
        fail(f"unknown status {status!r}")
    with database(ctx, write=False) as db:
        target = get_business(db, business)
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
                echo(*row.values())


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
        f"{result.external_id}: {result.status}; category={show(result.category_id)} "
        f"tax_rate={show(result.tax_rate_id)}"
    )
    for reason in result.review_reasons:
        echo(f"  {reason}")
    if result.rejection_cleared:
        typer.echo("  Nomi's last rejection cleared: the next auto-publish run takes it again")
