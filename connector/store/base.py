"""The base of the connector's tables: their metadata, UTC timestamps and shared column helpers.

Conventions: UUID primary keys; timestamps are timezone-aware UTC (SQLModel's ``UTCDateTime`` stores
them as UTC and always returns aware values, also on SQLite); money is ``Numeric(18, 2)`` read as
``Decimal``; lists and maps are ``sa.JSON``; enumerations are short strings whose allowed values are
the ``StrEnum`` classes of ``connector.rules.vocabulary``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ConnectorModel(
    SQLModel, registry=registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))
):
    """Base of the connector's tables: its own metadata, apart from any other SQLModel tables."""


metadata = ConnectorModel.metadata


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


MAX_ERROR_CHARS = 500
"""Characters of an error message kept in a row (a connection's ``last_error``, a sync run's
``error``, a connection check's detail): enough to read, never a whole response body."""


def short_error(text: str) -> str:
    """``text`` cut to what a row keeps (``MAX_ERROR_CHARS``)."""
    return text[:MAX_ERROR_CHARS]


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (typed: SQLModel does not declare ``__table__``)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_field() -> Any:
    return Field(default_factory=utcnow, nullable=False)


def updated_field() -> Any:
    return Field(default_factory=utcnow, nullable=False, sa_column_kwargs={"onupdate": utcnow})
