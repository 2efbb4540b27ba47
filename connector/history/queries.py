"""History report queries: the report window, business lookup and the SQL helpers the loaders share.

The loaders themselves are in ``connector.history.attempts`` (the big ``publish_attempts`` table,
aggregated in SQL) and ``connector.history.summaries`` (runs, waiting items, sync freshness,
connections). Businesses are reported by slug: loaders group by ``business_id`` and map ids to
slugs with one small query (`business_slugs`, `with_slug`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from connector.errors import UnknownBusinessError
from connector.rules.vocabulary import AttemptOutcome, AttemptStep
from connector.store.base import table_of
from connector.store.models import Business

#: Steps whose ``PUBLISHED_OUTCOMES`` mean the item became a Nomi record.
RECORD_STEPS = (
    AttemptStep.EXPENSE,
    AttemptStep.SALES_INVOICE,
    AttemptStep.SUPPLIER_CREDIT_NOTE,
    AttemptStep.CUSTOMER_CREDIT_NOTE,
    AttemptStep.LOOKUP,
)
#: ``recovered``: an earlier call had landed and the record was found by its ``source_id``.
PUBLISHED_OUTCOMES = (AttemptOutcome.PUBLISHED, AttemptOutcome.RECOVERED)
#: Outcomes that count as a failed attempt.
FAILED_OUTCOMES = (
    AttemptOutcome.REJECTED,
    AttemptOutcome.TRANSIENT,
    AttemptOutcome.UNKNOWN,
    AttemptOutcome.CONNECTION_LOST,
)
CHUNK_ROWS = 50_000
#: The Nomi endpoint each publish step calls (``resolve`` and ``claimant`` holds make no call).
STEP_ENDPOINTS: dict[str, str] = {
    AttemptStep.CONTACT: "POST /suppliers | /customers",
    AttemptStep.EXPENSE: "POST /expenses",
    AttemptStep.SALES_INVOICE: "POST /sales-invoices",
    AttemptStep.SUPPLIER_CREDIT_NOTE: "POST /supplier-credit-notes",
    AttemptStep.CUSTOMER_CREDIT_NOTE: "POST /customer-credit-notes",
    AttemptStep.ATTACHMENT: "PUT /{record}/attachments/{name}",
    AttemptStep.PAYMENT: "POST /sales-invoices/{id}/payments",
    AttemptStep.LOOKUP: "GET /{records}?source_id=",
    AttemptStep.VOID: "POST /{records}/{id}/void",
}

_biz = table_of(Business).c


@dataclass(frozen=True)
class ReportWindow:
    """The days a report covers (``since`` to ``until``, both inclusive, UTC) and its business."""

    since: date
    until: date
    business: str | None = None

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError(f"until ({self.until}) is before since ({self.since})")

    @property
    def start(self) -> datetime:
        """First instant of the window (UTC)."""
        return datetime.combine(self.since, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """First instant after the window (UTC)."""
        return datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)


def sql_day(column: Any, dialect: str) -> Any:
    """SQL for the UTC calendar day of a timestamp, as ``YYYY-MM-DD`` text."""
    if dialect == "sqlite":
        return sa.func.substr(column, 1, 10)  # stored as 'YYYY-MM-DD HH:MM:SS' in UTC
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")


def sql_epoch(column: Any, dialect: str) -> Any:
    """SQL for a timestamp as UTC epoch seconds (whole seconds, exact, on SQLite)."""
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.Integer)
    return sa.cast(sa.extract("epoch", column), sa.Float)


def sql_seconds(later: Any, earlier: Any, dialect: str) -> Any:
    """SQL for ``later - earlier`` in seconds (float)."""
    if dialect == "sqlite":
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0
    return sa.extract("epoch", later - earlier)


def business_slugs(conn: SAConnection, slug: str | None = None) -> dict[uuid.UUID, str]:
    """Business id -> slug (only ``slug``'s business when given).

    Raises:
        UnknownBusinessError: ``slug`` names no business.
    """
    query = sa.select(_biz.id, _biz.slug)
    if slug is not None:
        query = query.where(_biz.slug == slug)
    found = {row.id: row.slug for row in conn.execute(query)}
    if slug is not None and not found:
        raise UnknownBusinessError(f"no business with slug {slug!r}")
    return found


def business_filter(column: Any, slugs: dict[uuid.UUID, str], window: ReportWindow) -> Any:
    """A WHERE clause limiting ``column`` to the window's business (true when none)."""
    if window.business is None:
        return sa.true()
    return column.in_(list(slugs))


def to_frame(rows: Iterable[Any], columns: list[str]) -> pd.DataFrame:
    """A DataFrame from result rows with fixed columns (also when there are none)."""
    if isinstance(rows, sa.CursorResult):
        rows = rows.all()  # one fetchall instead of a fetch per row
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def raw_id(column: Any) -> Any:
    """An id column read without building ``uuid.UUID`` objects (hex text on SQLite)."""
    return sa.type_coerce(column, sa.String)


def with_slug(frame: pd.DataFrame, slugs: dict[uuid.UUID, str]) -> pd.DataFrame:
    """Replace ``business_id`` (UUID, or hex text from ``raw_id``) with ``business`` (the slug)."""
    lookup: dict[object, str] = {key: slug for key, slug in slugs.items()}
    lookup.update({key.hex: slug for key, slug in slugs.items()})
    frame.insert(0, "business", frame.pop("business_id").map(lookup).astype("string"))
    return frame
