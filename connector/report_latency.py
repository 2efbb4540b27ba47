"""Reading the history report's latency rows fast and compactly.

A year of history holds one published attempt per item that became a Nomi record (600,000 in the
benchmark). ``tuple_chunks`` reads them as plain DB-API tuples in bounded chunks, and
``latency_frame`` packs each chunk into numpy arrays as it arrives (business and day as small
integer codes, latency as float64), so the report holds about 16 bytes per row instead of three
Python objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]


def tuple_chunks(conn: Connection, query: Any, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``query`` as plain tuples, at most ``size`` at a time.

    On SQLite the DB-API cursor is read directly (no ``Row`` objects; the caller's columns need
    no result processing); elsewhere through a server-side cursor (``stream_results``).

    Args:
        conn: An open connection.
        query: A SQLAlchemy select.
        size: Rows per chunk.

    Returns:
        An iterator of non-empty lists of tuples.
    """
    if conn.dialect.name == "sqlite":
        result = conn.execute(query)
        try:
            while rows := result.cursor.fetchmany(size):
                yield list(rows)
        finally:
            result.close()
        return
    streamed = conn.execution_options(stream_results=True, yield_per=size).execute(query)
    for part in streamed.partitions():
        yield [tuple(row) for row in part]


class _Codes:
    """Business and day codes, filled chunk by chunk."""

    def __init__(self, slugs: dict[uuid.UUID, str]) -> None:
        self.names = sorted(set(slugs.values()))
        position = {name: code for code, name in enumerate(self.names)}
        self.business: dict[object, int] = {}
        for key, slug in slugs.items():  # the id as UUID (PostgreSQL) and as hex text (SQLite)
            self.business[key] = self.business[key.hex] = position[slug]
        self.days: dict[object, int] = {}

    def encode(self, rows: list[tuple[Any, ...]]) -> Chunk:
        """One chunk of ``(business_id, day, seconds)`` rows as three numpy arrays."""
        business_ids, days, seconds = zip(*rows, strict=True)
        for day in set(days) - self.days.keys():
            self.days[day] = len(self.days)
        count = len(rows)
        return (
            np.fromiter(map(self.business.__getitem__, business_ids), np.int32, count),
            np.fromiter(map(self.days.__getitem__, days), np.int32, count),
            np.fromiter(seconds, np.float64, count),
        )

    def dates(self) -> tuple[list[date], np.ndarray]:
        """The days in calendar order, and each day code's position in that order."""
        found = [
            day if isinstance(day, date) else date.fromisoformat(str(day)) for day in self.days
        ]
        order = np.argsort(np.array([d.toordinal() for d in found], dtype=np.int64), kind="stable")
        position = np.empty(len(found), dtype=np.int32)
        position[order] = np.arange(len(found), dtype=np.int32)
        return [found[i] for i in order], position


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """The parts end to end (an empty array when there are none)."""
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def latency_frame(
    chunks: Iterable[list[tuple[Any, ...]]], slugs: dict[uuid.UUID, str]
) -> pd.DataFrame:
    """Latency rows as a compact frame.

    Args:
        chunks: Lists of ``(business_id, day as 'YYYY-MM-DD', latency seconds)`` tuples.
        slugs: Business id -> slug, for every business the rows may name.

    Returns:
        Columns ``business`` (categorical, slugs sorted), ``day`` (categorical of ``date``) and
        ``latency_s`` (float64, rounded to milliseconds).
    """
    codes = _Codes(slugs)
    parts = [codes.encode(rows) for rows in chunks]
    business = _concat([p[0] for p in parts], np.int32)
    day = _concat([p[1] for p in parts], np.int32)
    seconds = _concat([p[2] for p in parts], np.float64)
    dates, position = codes.dates()
    return pd.DataFrame(
        {
            "business": pd.Categorical.from_codes(business, categories=codes.names),
            "day": pd.Categorical.from_codes(
                position[day] if len(day) else day, categories=pd.Index(dates, dtype=object)
            ),
            "latency_s": seconds.round(3),
        }
    )
