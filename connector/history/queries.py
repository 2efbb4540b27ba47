"""Loaders for the history report: SQL over the history tables, returned as tidy DataFrames.

Every loader filters in SQL (date window on an indexed timestamp, optional business), selects only
the columns the report needs and, for the one big table (``publish_attempts``), aggregates in SQL
so a year of history comes back as a few thousand rows. The pure transforms that turn these frames
into report tables live in ``connector.history.report``.

Businesses are reported by slug: loaders group by ``business_id`` and map ids to slugs with one
small query, so the big tables are never joined to ``businesses`` row by row.
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

from connector.history.latency import latency_frame, tuple_chunks
from connector.rules.vocabulary import AttemptOutcome, AttemptStep, ItemStatus
from connector.store.base import table_of
from connector.store.history_tables import PublishAttempt, PublishRun, SyncRun
from connector.store.models import Business, Connection, Item, SyncBookmark

#: Steps whose ``PUBLISHED_OUTCOMES`` mean the item became a Nomi record.
RECORD_STEPS = (AttemptStep.EXPENSE, AttemptStep.SALES_INVOICE, AttemptStep.LOOKUP)
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

_pa = table_of(PublishAttempt).c
_items = table_of(Item).c
_runs = table_of(PublishRun).c
_sync = table_of(SyncRun).c
_marks = table_of(SyncBookmark).c
_conns = table_of(Connection).c
_biz = table_of(Business).c


class UnknownBusinessError(LookupError):
    """The report was asked for a business slug that does not exist."""


@dataclass(frozen=True)
class ReportWindow:
    """The days a report covers (``since`` to ``until``, both inclusive, UTC) and its business."""

    since: date
    until: date
    business: str | None = None

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError(f"until ({self.until}) is before since ({self.since})")

    @classmethod
    def last_days(cls, days: int, *, today: date, business: str | None = None) -> ReportWindow:
        """The ``days`` days ending with ``today``."""
        return cls(since=today - timedelta(days=days - 1), until=today, business=business)

    @property
    def start(self) -> datetime:
        """First instant of the window (UTC)."""
        return datetime.combine(self.since, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """First instant after the window (UTC)."""
        return datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)


def _day(column: Any, dialect: str) -> Any:
    """SQL for the UTC calendar day of a timestamp, as ``YYYY-MM-DD`` text."""
    if dialect == "sqlite":
        return sa.func.substr(column, 1, 10)  # stored as 'YYYY-MM-DD HH:MM:SS' in UTC
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")


def _epoch(column: Any, dialect: str) -> Any:
    """SQL for a timestamp as UTC epoch seconds (whole seconds, exact, on SQLite)."""
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.Integer)
    return sa.cast(sa.extract("epoch", column), sa.Float)


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
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


def _business_filter(column: Any, slugs: dict[uuid.UUID, str], window: ReportWindow) -> Any:
    """A WHERE clause limiting ``column`` to the window's business (true when none)."""
    if window.business is None:
        return sa.true()
    return column.in_(list(slugs))


def _frame(rows: Iterable[Any], columns: list[str]) -> pd.DataFrame:
    """A DataFrame from result rows with fixed columns (also when there are none)."""
    if isinstance(rows, sa.CursorResult):
        rows = rows.all()  # one fetchall instead of a fetch per row
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def _raw_id(column: Any) -> Any:
    """An id column read without building ``uuid.UUID`` objects (hex text on SQLite)."""
    return sa.type_coerce(column, sa.String)


def _with_slug(frame: pd.DataFrame, slugs: dict[uuid.UUID, str]) -> pd.DataFrame:
    """Replace ``business_id`` (UUID, or hex text from ``_raw_id``) with ``business`` (the slug)."""
    lookup: dict[object, str] = {key: slug for key, slug in slugs.items()}
    lookup.update({key.hex: slug for key, slug in slugs.items()})
    frame.insert(0, "business", frame.pop("business_id").map(lookup).astype("string"))
    return frame


def _outcome_sums() -> list[Any]:
    """SQL sums of published, failed, held, retried and all attempts (see
    connector.history.report)."""

    def count_if(condition: Any, name: str) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0)).label(name)

    return [
        count_if(_pa.outcome.in_(PUBLISHED_OUTCOMES) & _pa.step.in_(RECORD_STEPS), "published"),
        count_if(_pa.outcome.in_(FAILED_OUTCOMES), "failed"),
        count_if(_pa.outcome == AttemptOutcome.HELD, "held"),
        count_if(_pa.attempt_no > 1, "retried"),
        sa.func.count().label("attempts"),
    ]


def _scans_attempts(conn: SAConnection, window: ReportWindow) -> bool:
    """Whether SQLite should read ``publish_attempts`` by a plain table scan for this window.

    SQLite otherwise walks an index (``at``; ``(business_id, at)`` to save the GROUP BY sort;
    ``item_id`` when the latency join starts from the items) with one random table lookup per
    row, which costs several times a plain scan once the window holds most of the table (a
    year's report over a year of history). A scan wins when the window covers more than half of
    the recorded time span. PostgreSQL's planner chooses by itself (always ``False``).
    """
    if conn.dialect.name != "sqlite":
        return False
    first, last = conn.execute(sa.select(sa.func.min(_pa.at), sa.func.max(_pa.at))).one()
    if first is None or last is None or last <= first:
        return False
    overlap = min(last, window.end) - max(first, window.start)
    return bool(overlap / (last - first) > 0.5)


def _unindexed(column: Any, scan: bool) -> Any:
    """``column``, wrapped (``coalesce(c, c)``) when scanning so SQLite uses no index for it."""
    return sa.func.coalesce(column, column) if scan else column


def _in_window(query: Any, window: ReportWindow, slugs: dict[uuid.UUID, str], scan: bool) -> Any:
    """Limit an attempts query to the window and its business (``scan``: ``_scans_attempts``)."""
    at = _unindexed(_pa.at, scan)
    return query.where(at >= window.start, at < window.end).where(
        _business_filter(_pa.business_id, slugs, window)
    )


def load_outcome_totals(conn: SAConnection, window: ReportWindow, by: str) -> pd.DataFrame:
    """Publish attempts in the window, classified and counted in SQL per business or per day.

    Args:
        conn: A connection to the connector database.
        window: Days and optional business.
        by: ``business`` (one row per business) or ``day`` (one row per UTC day).

    Returns:
        Columns ``<by>, published, failed, held, retried, attempts``.
    """
    if by not in ("business", "day"):
        raise ValueError(f"totals are by 'business' or 'day', not {by!r}")
    slugs = business_slugs(conn, window.business)
    scan = _scans_attempts(conn, window)
    if by == "business":
        key = _raw_id(_unindexed(_pa.business_id, scan))
    else:
        key = _day(_pa.at, conn.dialect.name)
    query = _in_window(sa.select(key.label("key"), *_outcome_sums()), window, slugs, scan)
    query = query.group_by(key)
    counts = ["published", "failed", "held", "retried", "attempts"]
    frame = _frame(conn.execute(query), ["key", *counts]).astype({c: "int64" for c in counts})
    if by == "business":
        return _with_slug(frame.rename(columns={"key": "business_id"}), slugs)
    frame["key"] = pd.to_datetime(frame["key"]).dt.date
    return frame.rename(columns={"key": "day"})


def load_failure_counts(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Failed and held attempts in the window, counted in SQL by business, outcome and code.

    Returns:
        Columns ``business, outcome, error_code, attempts``.
    """
    slugs = business_slugs(conn, window.business)
    scan = _scans_attempts(conn, window)
    business = _raw_id(_unindexed(_pa.business_id, scan))
    failing = _pa.outcome.in_([*FAILED_OUTCOMES, AttemptOutcome.HELD])
    query = _in_window(
        sa.select(business, _pa.outcome, _pa.error_code, sa.func.count()), window, slugs, scan
    ).where(failing)
    query = query.group_by(business, _pa.outcome, _pa.error_code)
    columns = ["business_id", "outcome", "error_code", "attempts"]
    frame = _frame(conn.execute(query), columns).astype({"attempts": "int64"})
    return _with_slug(frame, slugs)


def load_latencies(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Ready-to-Published latency of each item published in the window (read in chunks).

    The rows arrive as plain tuples in chunks of ``CHUNK_ROWS`` and are kept as three compact
    columns (about 16 bytes per published attempt), see ``connector.history.latency``.

    Returns:
        Columns ``business, day, latency_s`` (business and day categorical): one row per
        record-creating published attempt, latency = the attempt's time minus the item's
        ``ready_at``.
    """
    slugs = business_slugs(conn, window.business)
    dialect = conn.dialect.name
    scan = _scans_attempts(conn, window)
    # scanning: drive from the attempts (their item_id left unindexed), one search per row in
    # the covering index items(id, ready_at); SQLite would otherwise start from the items
    joined = sa.join(
        table_of(PublishAttempt),
        table_of(Item),
        _unindexed(_pa.item_id, scan) == _items.id,
    )
    seconds = sa.cast(_seconds(_pa.at, _items.ready_at, dialect), sa.Float)
    query = _in_window(
        sa.select(_raw_id(_pa.business_id), _epoch(_pa.at, dialect), seconds).select_from(joined),
        window,
        slugs,
        scan,
    )
    query = query.where(_pa.outcome.in_(PUBLISHED_OUTCOMES), _pa.step.in_(RECORD_STEPS))
    query = query.where(_items.ready_at.is_not(None))
    return latency_frame(tuple_chunks(conn, query, CHUNK_ROWS), slugs)


def load_run_totals(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Publish runs started in the window, totalled in SQL per trigger and day.

    Returns:
        Columns ``trigger, day, runs, claimed, published, failed, held, skipped, duration_s_sum,
        duration_s_max``.
    """
    slugs = business_slugs(conn, window.business)
    dialect = conn.dialect.name
    day = _day(_runs.started_at, dialect).label("day")
    duration = _seconds(_runs.finished_at, _runs.started_at, dialect)
    counts = ["claimed", "published", "failed", "held", "skipped"]
    query = (
        sa.select(
            _runs.trigger,
            day,
            sa.func.count().label("runs"),
            *[sa.func.sum(_runs[c]).label(c) for c in counts],
            sa.func.sum(duration).label("duration_s_sum"),
            sa.func.max(duration).label("duration_s_max"),
        )
        .where(_runs.started_at >= window.start, _runs.started_at < window.end)
        .where(_business_filter(_runs.business_id, slugs, window))
        .group_by(_runs.trigger, day)
    )
    columns = ["trigger", "day", "runs", *counts, "duration_s_sum", "duration_s_max"]
    frame = _frame(conn.execute(query), columns)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    for column in ["runs", *counts]:
        frame[column] = frame[column].fillna(0).astype("int64")
    for column in ["duration_s_sum", "duration_s_max"]:
        frame[column] = frame[column].astype("float64").round(3)
    return frame


def load_recent_runs(conn: SAConnection, window: ReportWindow, limit: int = 50) -> pd.DataFrame:
    """The ``limit`` latest publish runs started in the window.

    Returns:
        Columns ``run_id, flow_run_id, trigger, business, started_at, finished_at, claimed,
        published, failed, held, skipped`` (newest first; ``business`` empty for all-business runs).
    """
    slugs = business_slugs(conn, window.business)
    all_slugs = slugs if window.business else None
    query = (
        sa.select(
            _runs.id,
            _runs.flow_run_id,
            _runs.trigger,
            _runs.business_id,
            _runs.started_at,
            _runs.finished_at,
            _runs.claimed,
            _runs.published,
            _runs.failed,
            _runs.held,
            _runs.skipped,
        )
        .where(_runs.started_at >= window.start, _runs.started_at < window.end)
        .where(_business_filter(_runs.business_id, slugs, window))
        .order_by(_runs.started_at.desc())
        .limit(limit)
    )
    columns = ["run_id", "flow_run_id", "trigger", "business_id", "started_at", "finished_at"]
    columns += ["claimed", "published", "failed", "held", "skipped"]
    frame = _frame(conn.execute(query), columns)
    if all_slugs is None:
        ids = {i for i in frame["business_id"] if i is not None}
        all_slugs = {k: v for k, v in business_slugs(conn).items() if k in ids}
    frame = _with_slug(frame, all_slugs)
    for column in ["started_at", "finished_at"]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def load_review_reasons(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Review reasons of the items now in ``review`` (one row per item and reason, in chunks).

    Returns:
        Columns ``business, reason``.
    """
    slugs = business_slugs(conn, window.business)
    query = (
        sa.select(_items.business_id, _items.review_reasons)
        .where(_items.status == ItemStatus.REVIEW)
        .where(_business_filter(_items.business_id, slugs, window))
    )
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
    rows = [(b, r) for part in result.partitions() for b, reasons in part for r in reasons or []]
    return _with_slug(_frame(rows, ["business_id", "reason"]), slugs)


def load_waiting_items(conn: SAConnection, window: ReportWindow, limit: int = 20) -> pd.DataFrame:
    """The ``limit`` items waiting longest in ``ready`` (since ``ready_at``) or ``review``.

    Returns:
        Columns ``business, item_id, external_id, kind, status, waiting_since, reasons,
        last_error_code`` (oldest first).
    """
    slugs = business_slugs(conn, window.business)
    since = sa.case(
        (_items.status == ItemStatus.READY, sa.func.coalesce(_items.ready_at, _items.created_at)),
        else_=_items.created_at,
    ).label("waiting_since")
    query = (
        sa.select(
            _items.business_id,
            _items.id,
            _items.external_id,
            _items.kind,
            _items.status,
            since,
            _items.review_reasons,
            _items.last_error_code,
        )
        .where(_items.status.in_([ItemStatus.READY, ItemStatus.REVIEW]))
        .where(_business_filter(_items.business_id, slugs, window))
        .order_by(since, _items.id)
        .limit(limit)
    )
    columns = ["business_id", "item_id", "external_id", "kind", "status", "waiting_since"]
    columns += ["reasons", "last_error_code"]
    frame = _with_slug(_frame(conn.execute(query), columns), slugs)
    frame["waiting_since"] = pd.to_datetime(frame["waiting_since"], utc=True)
    frame["reasons"] = frame["reasons"].map(lambda r: "; ".join(r or []))
    return frame


def load_sync_state(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Per connection and list: the last committed sync (bookmark) and the window's sync runs.

    Returns:
        Columns ``business, list_name, last_synced_at, runs, failed_runs`` (``failed_runs``: runs
        in the window that recorded an error).
    """
    slugs = business_slugs(conn, window.business)
    marks = (
        sa.select(_conns.business_id, _marks.list_name, _marks.updated_at)
        .select_from(sa.join(table_of(SyncBookmark), table_of(Connection)))
        .where(_business_filter(_conns.business_id, slugs, window))
    )
    failed = sa.func.sum(sa.case((_sync.error.is_not(None), 1), else_=0))
    runs = (
        sa.select(
            _conns.business_id,
            _sync.list_name,
            sa.func.count().label("runs"),
            failed.label("failed_runs"),
        )
        .select_from(sa.join(table_of(SyncRun), table_of(Connection)))
        .where(_sync.started_at >= window.start, _sync.started_at < window.end)
        .where(_business_filter(_conns.business_id, slugs, window))
        .group_by(_conns.business_id, _sync.list_name)
    )
    left = _frame(conn.execute(marks), ["business_id", "list_name", "last_synced_at"])
    right = _frame(conn.execute(runs), ["business_id", "list_name", "runs", "failed_runs"])
    frame = left.merge(right, on=["business_id", "list_name"], how="outer")
    frame["last_synced_at"] = pd.to_datetime(frame["last_synced_at"], utc=True)
    for column in ["runs", "failed_runs"]:
        frame[column] = frame[column].fillna(0).astype("int64")
    return _with_slug(frame, slugs)


def load_connections(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Every connection of the window's business(es).

    Returns:
        Columns ``business, organisation, status, consent_expires_at, last_verified_at``.
    """
    slugs = business_slugs(conn, window.business)
    query = sa.select(
        _conns.business_id,
        _conns.organisation_name,
        _conns.status,
        _conns.consent_expires_at,
        _conns.last_verified_at,
    ).where(_business_filter(_conns.business_id, slugs, window))
    columns = ["business_id", "organisation", "status", "consent_expires_at", "last_verified_at"]
    frame = _with_slug(_frame(conn.execute(query), columns), slugs)
    for column in ["consent_expires_at", "last_verified_at"]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
