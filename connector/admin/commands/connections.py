"""``connection`` commands: disconnect a business from Nomi by running the flow here."""

from __future__ import annotations

import os

import typer

from connector.admin.commands.base import CliState, fail

connection_app = typer.Typer(
    help="Nomi connections (runs the flow here: needs the Prefect API).", no_args_is_help=True
)


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
    from flows.disconnect_from_nomi import DisconnectParams, disconnect_from_nomi

    state: CliState = ctx.obj
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
        fail(flow_error(final.message))
    typer.echo(final.result())


def flow_error(message: str | None) -> str:
    """A failed run's message without Prefect's preamble."""
    text = message or "the run failed"
    _, sep, rest = text.partition("encountered an exception: ")
    return rest if sep else text
