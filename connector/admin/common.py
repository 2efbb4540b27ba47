"""What the administration modules share: their errors, column sizes and value checks.

The admin modules are plain functions with an injected session, used by the CLI and by flows.
They flush but do not commit; the caller's ``connector.store.db.session`` commits. Entries of
the mirrored Nomi lists are named by code or name through ``connector.admin.lookup``.
"""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import Session

#: Characters a name column holds (``varchar(255)``: businesses, users, payment methods, rules).
NAME_CHARS = 255
#: Characters of a rule's description (what an item's description may hold, docs/intake.md).
DESCRIPTION_CHARS = 2000
#: Characters of a user's email (``users.email``).
EMAIL_CHARS = 320

Row = TypeVar("Row")


class RefusedValueError(ValueError):
    """A value refused for one named input (a setting, a rule field, the acting user).

    ``subject`` names that input in plain words (``bank account``, ``actor``); a front end may
    use it to point at its own way of giving it (the CLI names its option).
    """

    def __init__(self, message: str, *, subject: str) -> None:
        super().__init__(message)
        self.subject = subject


def add_row(session: Session, row: Row) -> Row:
    """Add (or re-add) a row and flush it, so its id and defaults are set."""
    session.add(row)
    session.flush()
    return row


def may_be_stored(value: str, *, limit: int) -> bool:
    """Whether a looked-up value could be in a column at all (a NUL breaks PostgreSQL's query)."""
    return len(value) <= limit and "\x00" not in value
