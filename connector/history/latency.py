"""Reading the history report's latency rows fast and compactly.

A year of history holds one published attempt per item that became a Nomi record (600,000 in the
benchmark). ``tuple_chunks`` reads them as plain DB-API tuples in bounded chunks, and
``latency_frame`` packs each chunk into numpy arrays as it arrives (business and day as small
integer codes, latency as float64; the day comes from the attempt time as epoch seconds, so no
text is read for it): about 16 bytes per row instead of three Python objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from operator import itemgetter
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


EPOCH = date(1970, 1, 1)


class _Codes:
    """Business codes, filled chunk by chunk."""

    def __init__(self, slugs: dict[uuid.UUID, str]) -> None:
        self.names = sorted(set(slugs.values()))
        position = {name: code for code, name in enumerate(self.names)}
        self.business: dict[object, int] = {}
        for key, slug in slugs.items():  # the id as UUID (PostgreSQL) and as hex text (SQLite)
            self.business[key] = self.business[key.hex] = position[slug]

    def encode(self, rows: list[tuple[Any, ...]]) -> Chunk:
        """One chunk of ``(business_id, epoch seconds, latency seconds)`` rows as numpy arrays."""
        count = len(rows)
        at = np.fromiter(map(itemgetter(1), rows), np.float64, count)
        return (
            np.fromiter(map(self.business.__getitem__, map(itemgetter(0), rows)), np.int32, count),
            np.floor(at / 86400.0).astype(np.int32),
            np.fromiter(map(itemgetter(2), rows), np.float64, count),
        )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """The parts end to end (an empty array when there are none)."""
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def latency_frame(
    chunks: Iterable[list[tuple[Any, ...]]], slugs: dict[uuid.UUID, str]
) -> pd.DataFrame:
    """Latency rows as a compact frame.

    Args:
        chunks: Lists of ``(business_id, attempt time as UTC epoch seconds, latency seconds)``.
        slugs: Business id -> slug, for every business the rows may name.

    Returns:
        Columns ``business`` (categorical, slugs sorted), ``day`` (categorical of ``date``, the
        attempt's UTC day, in calendar order) and ``latency_s`` (float64, rounded to ms).
    """
    codes = _Codes(slugs)
    parts = [codes.encode(rows) for rows in chunks]
    business = _concat([p[0] for p in parts], np.int32)
    day_numbers, day_codes = np.unique(
        _concat([p[1] for p in parts], np.int32), return_inverse=True
    )
    seconds = _concat([p[2] for p in parts], np.float64)
    dates = [EPOCH + timedelta(days=int(n)) for n in day_numbers]
    return pd.DataFrame(
        {
            "business": pd.Categorical.from_codes(business, categories=codes.names),
            "day": pd.Categorical.from_codes(
                day_codes.reshape(-1), categories=pd.Index(dates, dtype=object)
            ),
            "latency_s": seconds.round(3),
        }
    )
