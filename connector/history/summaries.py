"""History loaders for the report summaries: runs, waiting items, sync freshness, connections.

Each loader filters in SQL (date window, optional business), selects only the columns the report
needs and returns a tidy DataFrame with the business as its slug.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from connector.history.queries import (
    CHUNK_ROWS,
    ReportWindow,
    business_filter,
    business_slugs,
    sql_day,
    sql_seconds,
    to_frame,
    with_slug,
)
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of
from connector.store.history_tables import PublishRun, SyncRun
from connector.store.models import Connection, Item, SyncBookmark

_items = table_of(Item).c
_runs = table_of(PublishRun).c
_sync = table_of(SyncRun).c
_marks = table_of(SyncBookmark).c
_conns = table_of(Connection).c


def load_run_totals(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Publish runs started in the window, totalled in SQL per trigger and day.

    Returns:
        Columns ``trigger, day, runs, claimed, published, failed, held, skipped, duration_s_sum,
        duration_s_max``.
    """
    slugs = business_slugs(conn, window.business)
    dialect = conn.dialect.name
    day = sql_day(_runs.started_at, dialect).label("day")
    duration = sql_seconds(_runs.finished_at, _runs.started_at, dialect)
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
        .where(business_filter(_runs.business_id, slugs, window))
        .group_by(_runs.trigger, day)
    )
    columns = ["trigger", "day", "runs", *counts, "duration_s_sum", "duration_s_max"]
    frame = to_frame(conn.execute(query), columns)
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
        .where(business_filter(_runs.business_id, slugs, window))
        .order_by(_runs.started_at.desc())
        .limit(limit)
    )
    columns = ["run_id", "flow_run_id", "trigger", "business_id", "started_at", "finished_at"]
    columns += ["claimed", "published", "failed", "held", "skipped"]
    frame = to_frame(conn.execute(query), columns)
    if all_slugs is None:
        ids = {i for i in frame["business_id"] if i is not None}
        all_slugs = {k: v for k, v in business_slugs(conn).items() if k in ids}
    frame = with_slug(frame, all_slugs)
    for column in ["started_at", "finished_at"]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def load_review_reasons(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Review reasons of the items now in ``review`` (one row per item and reason, in chunks).

    Returns:
        Columns ``business, supplier, reason`` (``supplier``: the item's supplier or customer
        name, empty when it has none).
    """
    slugs = business_slugs(conn, window.business)
    query = (
        sa.select(_items.business_id, _items.contact_name, _items.review_reasons)
        .where(_items.status == ItemStatus.REVIEW)
        .where(business_filter(_items.business_id, slugs, window))
    )
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
    rows = [
        (b, name, r)
        for part in result.partitions()
        for b, name, reasons in part
        for r in reasons or []
    ]
    return with_slug(to_frame(rows, ["business_id", "supplier", "reason"]), slugs)


def load_item_counts(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Items now waiting, per business: ``business, in_review, ready`` (every business listed)."""
    slugs = business_slugs(conn, window.business)
    count_if = [
        sa.func.sum(sa.case((_items.status == status, 1), else_=0)).label(status.value)
        for status in (ItemStatus.REVIEW, ItemStatus.READY)
    ]
    query = (
        sa.select(_items.business_id, *count_if)
        .where(_items.status.in_([ItemStatus.REVIEW, ItemStatus.READY]))
        .where(business_filter(_items.business_id, slugs, window))
        .group_by(_items.business_id)
    )
    found = {row[0]: (row[1], row[2]) for row in conn.execute(query)}
    rows = [(bid, *found.get(bid, (0, 0))) for bid in slugs]
    frame = with_slug(to_frame(rows, ["business_id", "in_review", "ready"]), slugs)
    frame = frame.astype({"in_review": "int64", "ready": "int64"})
    return frame.sort_values("business", ignore_index=True)


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
        .where(business_filter(_items.business_id, slugs, window))
        .order_by(since, _items.id)
        .limit(limit)
    )
    columns = ["business_id", "item_id", "external_id", "kind", "status", "waiting_since"]
    columns += ["reasons", "last_error_code"]
    frame = with_slug(to_frame(conn.execute(query), columns), slugs)
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
        .where(business_filter(_conns.business_id, slugs, window))
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
        .where(business_filter(_conns.business_id, slugs, window))
        .group_by(_conns.business_id, _sync.list_name)
    )
    left = to_frame(conn.execute(marks), ["business_id", "list_name", "last_synced_at"])
    right = to_frame(conn.execute(runs), ["business_id", "list_name", "runs", "failed_runs"])
    frame = left.merge(right, on=["business_id", "list_name"], how="outer")
    frame["last_synced_at"] = pd.to_datetime(frame["last_synced_at"], utc=True)
    for column in ["runs", "failed_runs"]:
        frame[column] = frame[column].fillna(0).astype("int64")
    return with_slug(frame, slugs)


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
    ).where(business_filter(_conns.business_id, slugs, window))
    columns = ["business_id", "organisation", "status", "consent_expires_at", "last_verified_at"]
    frame = with_slug(to_frame(conn.execute(query), columns), slugs)
    for column in ["consent_expires_at", "last_verified_at"]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
