"""``history`` commands: export one row per publish attempt (pandas is imported only here)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer

from connector.admin.commands.base import CliState, fail_with, user_errors

history_app = typer.Typer(help="Publish run history.", no_args_is_help=True)


class ExportFormat(StrEnum):
    """The file formats ``history export`` writes."""

    CSV = "csv"
    PARQUET = "parquet"


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    since: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="First day (UTC)."),
    until: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Last day (UTC), included; default today."
    ),
    business: str | None = typer.Option(None, help="Business slug; default every business."),
    fmt: ExportFormat = typer.Option(
        ..., "--format", case_sensitive=False, help="File format of the export."
    ),
    output: Path = typer.Option(..., help="File to write (replaced)."),
) -> None:
    """Export one row per publish attempt (columns in docs/history.md)."""
    from connector.history.export import export_attempts
    from connector.history.queries import ReportWindow

    state: CliState = ctx.obj
    try:
        last = until.date() if until else datetime.now(UTC).date()
        window = ReportWindow(since=since.date(), until=last, business=business)
        rows = export_attempts(state.engine, window, output, fmt=fmt.value)
    except user_errors() as exc:
        fail_with(exc)
    finally:
        state.engine.dispose()
    typer.echo(f"exported {rows} attempts ({window.since} to {window.until}) to {output}")
