"""History loaders over ``publish_attempts``: outcome totals, failure counts and latencies.

The one big table: every loader filters in SQL (date window on an indexed timestamp, optional
business) and aggregates in SQL, so a year of history comes back as a few thousand rows (the
latencies as compact chunks, see ``connector.history.latency``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from connector.history.latency import latency_frame, tuple_chunks
from connector.history.queries import (
    CHUNK_ROWS,
    FAILED_OUTCOMES,
    PUBLISHED_OUTCOMES,
    RECORD_STEPS,
    STEP_ENDPOINTS,
    ReportWindow,
    business_filter,
    business_slugs,
    raw_id,
    sql_day,
    sql_epoch,
    sql_seconds,
    to_frame,
    with_slug,
)
from connector.rules.vocabulary import AttemptOutcome
from connector.store.base import table_of
from connector.store.history_tables import PublishAttempt
from connector.store.models import Item

_pa = table_of(PublishAttempt).c
_items = table_of(Item).c


def _outcome_sums() -> list[Any]:
    """SQL sums of published, failed, retried and all attempts (see docs/history.md)."""

    def count_if(condition: Any, name: str) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0)).label(name)

    return [
        count_if(_pa.outcome.in_(PUBLISHED_OUTCOMES) & _pa.step.in_(RECORD_STEPS), "published"),
        count_if(_pa.outcome.in_(FAILED_OUTCOMES), "failed"),
        count_if(_pa.attempt_no > 1, "retried"),
        sa.func.count().label("attempts"),
    ]


def _base_sums() -> list[Any]:
    """SQL sums over the published records: their base-currency total and how many had none."""
    published = _pa.outcome.in_(PUBLISHED_OUTCOMES) & _pa.step.in_(RECORD_STEPS)
    return [
        sa.func.sum(sa.case((published & _pa.base_total.is_(None), 1), else_=0)).label(
            "without_base_total"
        ),
        sa.cast(sa.func.sum(sa.case((published, _pa.base_total), else_=None)), sa.Float).label(
            "base_total"
        ),
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
        business_filter(_pa.business_id, slugs, window)
    )


def load_outcome_totals(
    conn: SAConnection, window: ReportWindow, by: str, businesses: Collection[str] = ()
) -> pd.DataFrame:
    """Publish attempts in the window, classified and counted in SQL per business and/or day.

    Args:
        conn: A connection to the connector database.
        window: Days and optional business.
        by: ``business``, ``day`` (UTC), ``business_day`` (one row per business and day) or
            ``business_document`` (per business, document type and base currency).
        businesses: Only these slugs (read through the ``(business_id, at)`` index: the
            per-business trends of a few businesses cost only their rows). Empty: all.

    Returns:
        Columns ``[business,] [day,] published, failed, retried, attempts``; by
        ``business_document`` (one pass that the per-business totals are summed from, see
        ``connector.history.documents``) also ``document_type, base_currency`` as keys and
        ``without_base_total, base_total`` (float, NaN when none of the group's published
        records has one: not recorded, never 0).
    """
    if by not in ("business", "day", "business_day", "business_document"):
        raise ValueError(
            f"totals are by 'business', 'day', 'business_day' or 'business_document', not {by!r}"
        )
    slugs = business_slugs(conn, window.business)
    scan = not businesses and _scans_attempts(conn, window)
    keys: list[Any] = []
    names: list[str] = []
    if by in ("business", "business_day", "business_document"):
        keys.append(raw_id(_unindexed(_pa.business_id, scan)).label("business_id"))
        names.append("business_id")
    if by in ("day", "business_day"):
        keys.append(sql_day(_pa.at, conn.dialect.name).label("day"))
        names.append("day")
    counts = ["published", "failed", "retried", "attempts"]
    sums = _outcome_sums()
    if by == "business_document":
        keys += [_pa.document_type, _pa.base_currency]
        names += ["document_type", "base_currency"]
        sums += _base_sums()
        counts.append("without_base_total")
    query = _in_window(sa.select(*keys, *sums), window, slugs, scan)
    if businesses:
        wanted = [bid for bid, slug in slugs.items() if slug in set(businesses)]
        query = query.where(_pa.business_id.in_(wanted))
    query = query.group_by(*keys)
    columns = [*names, *counts] + (["base_total"] if by == "business_document" else [])
    frame = to_frame(conn.execute(query), columns).astype({c: "int64" for c in counts})
    if "day" in names:  # a few hundred distinct days: parse each once
        frame["day"] = frame["day"].map({d: date.fromisoformat(d) for d in set(frame["day"])})
    if "business_id" in names:
        frame = with_slug(frame, slugs)
    return frame


def load_failure_counts(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Failed attempts in the window, counted in SQL by business, error code and contact.

    The contact is the item's supplier or customer name as imported (empty when it has none):
    the report shows it beside the reason instead of inside it.

    Returns:
        Columns ``business, outcome, error_code, supplier, attempts``.
    """
    slugs = business_slugs(conn, window.business)
    scan = _scans_attempts(conn, window)
    business = raw_id(_unindexed(_pa.business_id, scan))
    joined = sa.join(table_of(PublishAttempt), table_of(Item), _pa.item_id == _items.id)
    query = (
        _in_window(
            sa.select(business, _pa.outcome, _pa.error_code, _items.contact_name, sa.func.count())
            .select_from(joined)
            .where(_pa.outcome.in_(FAILED_OUTCOMES)),
            window,
            slugs,
            scan,
        )
    ).group_by(business, _pa.outcome, _pa.error_code, _items.contact_name)
    columns = ["business_id", "outcome", "error_code", "supplier", "attempts"]
    frame = to_frame(conn.execute(query), columns).astype({"attempts": "int64"})
    return with_slug(frame, slugs)


def load_call_counts(
    conn: SAConnection, window: ReportWindow, businesses: Collection[str] = ()
) -> pd.DataFrame:
    """The window's Nomi calls counted per step and duration in whole milliseconds.

    Every attempt with a ``latency_ms`` on a step that calls Nomi (``STEP_ENDPOINTS``; holds
    make no call) whatever its outcome: the counts per distinct duration give exact
    percentiles without reading one row per call.

    Args:
        conn: A connection to the connector database.
        window: Days and optional business.
        businesses: Without: every call of the window together (``business`` = ``all``). With
            slugs: those businesses' calls, each on its own rows (read through the
            ``(business_id, at)`` index, so a few businesses cost only their own rows).

    Returns:
        Columns ``business, step, latency_ms, calls``.
    """
    slugs = business_slugs(conn, window.business)
    wanted = {bid: slug for bid, slug in slugs.items() if slug in set(businesses)}
    calls = [
        _pa.latency_ms.is_not(None),
        _pa.step.in_(list(STEP_ENDPOINTS)),
        _pa.outcome != AttemptOutcome.HELD,
    ]
    columns = ["step", "latency_ms", "calls"]
    if not businesses:
        scan = _scans_attempts(conn, window)
        query = _in_window(
            sa.select(_pa.step, _pa.latency_ms, sa.func.count()), window, slugs, scan
        ).where(*calls)
        frame = to_frame(conn.execute(query.group_by(_pa.step, _pa.latency_ms)), columns)
        frame.insert(0, "business", "all")
    else:
        business = raw_id(_pa.business_id)
        query = (
            sa.select(business, _pa.step, _pa.latency_ms, sa.func.count())
            .where(_pa.at >= window.start, _pa.at < window.end, *calls)
            .where(_pa.business_id.in_(list(wanted)))
            .group_by(business, _pa.step, _pa.latency_ms)
        )
        frame = with_slug(to_frame(conn.execute(query), ["business_id", *columns]), slugs)
    return frame.astype({"business": "string", "latency_ms": "int64", "calls": "int64"})


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
    seconds = sa.cast(sql_seconds(_pa.at, _items.ready_at, dialect), sa.Float)
    query = _in_window(
        sa.select(raw_id(_pa.business_id), sql_epoch(_pa.at, dialect), seconds).select_from(joined),
        window,
        slugs,
        scan,
    )
    query = query.where(_pa.outcome.in_(PUBLISHED_OUTCOMES), _pa.step.in_(RECORD_STEPS))
    query = query.where(_items.ready_at.is_not(None))
    return latency_frame(tuple_chunks(conn, query, CHUNK_ROWS), slugs)
