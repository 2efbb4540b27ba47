"""Export publish attempts (one row each) to CSV or Parquet for analysts' own tools.

The rows are streamed from the database in chunks and appended to the file, so memory stays
bounded however long the window. Columns (documented in docs/history.md): ``EXPORT_COLUMNS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connector.history.queries import CHUNK_ROWS, ReportWindow, business_slugs
from connector.store.base import table_of
from connector.store.history_tables import PublishAttempt, PublishRun
from connector.store.models import Business, Item

ExportFormat = Literal["csv", "parquet"]

_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_INT = pa.int64()
_MONEY = pa.decimal128(18, 2)
#: Column name -> Arrow type, in file order.
EXPORT_SCHEMA = pa.schema(
    [
        ("attempt_id", _STRING),
        ("at", _TS),
        ("business", _STRING),
        ("item_id", _STRING),
        ("item_external_id", _STRING),
        ("item_kind", _STRING),
        ("run_id", _STRING),
        ("flow_run_id", _STRING),
        ("run_trigger", _STRING),
        ("run_started_at", _TS),
        ("run_finished_at", _TS),
        ("attempt_no", _INT),
        ("step", _STRING),
        ("outcome", _STRING),
        ("http_status", _INT),
        ("error_code", _STRING),
        ("error_message", _STRING),
        ("nomi_record_id", _STRING),
        ("latency_ms", _INT),
        ("item_ready_at", _TS),
        ("item_published_at", _TS),
        # issue 20 (migration 0007): empty on attempts recorded before it ("not recorded")
        ("document_type", _STRING),
        ("currency", _STRING),
        ("total", _MONEY),
        ("base_currency", _STRING),
        ("base_total", _MONEY),
    ]
)
EXPORT_COLUMNS = EXPORT_SCHEMA.names
_UUIDS = ["attempt_id", "item_id", "run_id", "flow_run_id"]
_TIMES = [f.name for f in EXPORT_SCHEMA if f.type == _TS]
_INTS = [f.name for f in EXPORT_SCHEMA if f.type == _INT]


def _query(window: ReportWindow, business_ids: list[object]) -> sa.Select[tuple[object, ...]]:
    """The attempts of the window joined with their business, item and (if recorded) run."""
    a = table_of(PublishAttempt).c
    i = table_of(Item).c
    r = table_of(PublishRun).c
    b = table_of(Business).c
    joined = (
        sa.join(table_of(PublishAttempt), table_of(Business), a.business_id == b.id)
        .join(table_of(Item), a.item_id == i.id)
        .outerjoin(table_of(PublishRun), a.run_id == r.id)
    )
    query = (
        sa.select(
            a.id,
            a.at,
            b.slug,
            a.item_id,
            i.external_id,
            i.kind,
            a.run_id,
            r.flow_run_id,
            r.trigger,
            r.started_at,
            r.finished_at,
            a.attempt_no,
            a.step,
            a.outcome,
            a.http_status,
            a.error_code,
            a.error_message,
            a.nomi_record_id,
            a.latency_ms,
            i.ready_at,
            i.published_at,
            a.document_type,
            a.currency,
            a.total,
            a.base_currency,
            a.base_total,
        )
        .select_from(joined)
        .where(a.at >= window.start, a.at < window.end)
        .order_by(a.at, a.id)
    )
    if window.business is not None:
        query = query.where(a.business_id.in_(business_ids))
    return query


def _typed(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """One chunk of result rows as a DataFrame with the export's column types."""
    frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
    for column in _UUIDS:
        frame[column] = frame[column].map(lambda v: None if v is None else str(v)).astype("string")
    for column in _TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    for column in _INTS:
        frame[column] = frame[column].astype("Int64")
    return frame


def iter_attempt_frames(
    engine: Engine, window: ReportWindow, *, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the window's attempts as DataFrames of at most ``chunk_rows`` rows, oldest first.

    Raises:
        connector.errors.UnknownBusinessError: The window's business does not exist.
    """
    with engine.connect() as conn:
        ids: list[object] = list(business_slugs(conn, window.business)) if window.business else []
        streaming = conn.execution_options(stream_results=True, yield_per=chunk_rows)
        for part in streaming.execute(_query(window, ids)).partitions():
            yield _typed([tuple(row) for row in part])


def export_attempts(
    engine: Engine,
    window: ReportWindow,
    output: Path,
    *,
    fmt: ExportFormat,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Write one row per publish attempt of the window to ``output``.

    Args:
        engine: The connector database.
        window: Days (UTC, inclusive) and optional business slug.
        output: File to write (replaced; parent folders created).
        fmt: ``csv`` (UTF-8, header, ISO-8601 UTC timestamps) or ``parquet``.
        chunk_rows: Rows read and written per chunk.

    Returns:
        The number of rows written (a header-only/empty file when 0).

    Raises:
        ValueError: Unknown format.
        connector.errors.UnknownBusinessError: The window's business does not exist.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r} (csv or parquet)")
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    if fmt == "csv":
        with output.open("w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(EXPORT_COLUMNS) + "\n")
            for frame in iter_attempt_frames(engine, window, chunk_rows=chunk_rows):
                frame.to_csv(handle, header=False, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
                written += len(frame)
        return written
    with pq.ParquetWriter(output, EXPORT_SCHEMA) as writer:
        for frame in iter_attempt_frames(engine, window, chunk_rows=chunk_rows):
            writer.write_table(
                pa.Table.from_pandas(frame, schema=EXPORT_SCHEMA, preserve_index=False)
            )
            written += len(frame)
    return written
