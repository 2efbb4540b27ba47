"""What every ``nomi-connector`` command shares: its state, its session, its output and errors.

User errors print one clear line and exit with status 1; a database another writer keeps busy for
longer than the busy timeout prints one line and exits with status 75 (``BUSY_EXIT``: try again).
Text from the database or the command line is printed through ``connector.text_guard.printable``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import NoReturn

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.access import PermissionDeniedError
from connector.admin.common import RefusedValueError
from connector.settings import ConnectorSettings
from connector.store.db import is_busy_error, make_engine, session
from connector.text_guard import printable

USER_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError, PermissionDeniedError)
#: The help of every ``--business`` option.
BUSINESS_HELP = "Slug of the business (see 'business list')."
BUSY_EXIT = 75  # EX_TEMPFAIL: nothing was changed, the same command can simply be run again
#: The option that gives the input a refusal is about (``RefusedValueError.subject``; a setting's
#: name is its own: ``settings set`` takes KEY=VALUE).
OPTION_OF = {
    "actor": "--actor",
    "bank account": "--bank-account",
    "category": "--category",
    "tax rate": "--tax-rate",
}


class CliState:
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


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix (``IntakeError`` too, imported only when needed)."""
    from connector.items.intake import IntakeError

    return (*USER_ERRORS, IntakeError)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (escaped) on stderr and exit with ``code``."""
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(code)


def fail_with(exc: Exception) -> NoReturn:
    """Fail with a user error's message, naming the option a refused value came from."""
    option = OPTION_OF.get(exc.subject) if isinstance(exc, RefusedValueError) else None
    fail(f"{exc} (option {option})" if option else str(exc))


def echo(*values: object, sep: str = "\t") -> None:
    """Print values (escaped: see ``printable``) joined by ``sep``: one line of output."""
    typer.echo(sep.join(printable(show(v)) for v in values))


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, as_json: bool = False
) -> None:
    """Print rows as tab-separated lines under a header line (printed even with no rows), or,
    ``as_json``, one JSON object per row keyed by the headers (JSON escapes text itself)."""
    if not as_json:
        echo(*headers)
    for row in rows:
        if as_json:
            typer.echo(json.dumps(dict(zip(headers, (_plain(v) for v in row), strict=True))))
        else:
            echo(*row)


def _plain(value: object) -> object:
    """A value as JSON holds it (decimals as the table shows them, ids as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return show(value)


def shown_id(words: str | None, nomi_id: str | None) -> str:
    """A stored Nomi id with its entry's words when the mirror has it (``453 Office Expenses``)."""
    if nomi_id is None:
        return "-"
    return nomi_id if words in (None, nomi_id) else f"{words} [{nomi_id}]"


def show(value: object) -> str:
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


def busy(state: CliState) -> NoReturn:
    """Say in one line that the database stayed busy, and exit with ``BUSY_EXIT``."""
    fail(
        f"the database is busy: another writer (an import, a publish run) held it for more "
        f"than {state.settings.busy_timeout:g} s; nothing was changed, run the command again "
        "(NOMI_CONNECTOR_BUSY_TIMEOUT sets the wait)",
        BUSY_EXIT,
    )


@contextmanager
def database(ctx: typer.Context, *, write: bool) -> Iterator[Session]:
    """A committed-on-success session; user errors become one line and exit status 1.

    ``write``: the command reads and then writes. Its transactions then start as writes, so it
    waits its turn while a publish run commits instead of failing with "database is locked".
    A database that stays busy longer than the busy timeout becomes one line and ``BUSY_EXIT``.
    """
    state: CliState = ctx.obj
    try:
        with session(state.engine, write=write) as db:
            yield db
    except user_errors() as exc:
        fail_with(exc)
    except sa.exc.OperationalError as exc:
        if not is_busy_error(exc):
            raise
        busy(state)
    finally:
        state.engine.dispose()


def reassess(db: Session, business_id: uuid.UUID) -> str:
    """Reassess after a rules or settings change; says how many rejected items go again.

    A business not connected yet has nothing to reassess against: its items are assessed once
    its lists are mirrored.
    """
    from connector.errors import NotConnectedError
    from connector.items.choices import reassess_after_change

    try:
        _, retried = reassess_after_change(db, business_id)
    except NotConnectedError:
        return ""
    return f" ({retried} item(s) Nomi had rejected will be published again)" if retried else ""
