"""Benchmark: the history report over 1,000,000 publish attempts (a year, 1,000 businesses).

Prints ``BENCH report`` and ``BENCH report-memory`` against a naive ``pd.read_sql`` baseline run
alongside. ``python -m bench.reports [ROWS]`` runs another size. Method and figures:
docs/performance.md.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connector.history.queries import ReportWindow
from connector.history.report.build import build_report
from connector.store.db import make_engine, migrate

BUSINESSES = 1_000
ITEMS_PER_ATTEMPT = 0.25
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
STEPS_OUTCOMES = [
    ("expense", "published", None, 60),
    ("attachment", "published", None, 15),
    ("expense", "transient", "SERVER_ERROR", 10),
    ("expense", "rejected", "VALIDATION", 5),
    ("contact", "held", "NEW_SUPPLIER", 5),
    ("sales_invoice", "connection_lost", "TOKEN_REJECTED", 5),
]


def _hex(n: int, kind: int) -> str:
    return f"{kind:04x}{n:028x}"


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _texts(moments: np.ndarray) -> list[str]:
    """datetime64[us] values as SQLite's stored UTC text ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    return [t.replace("T", " ") for t in np.datetime_as_string(moments, unit="us").tolist()]


def generate(path: Path, rows: int) -> None:
    """Create the schema and bulk-insert businesses, items and ``rows`` attempts."""
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    items = max(1, int(rows * ITEMS_PER_ATTEMPT))
    seconds = 365 * 86400
    db = sqlite3.connect(path)
    for pragma in (
        "journal_mode=DELETE",
        "journal_mode=OFF",
        "synchronous=OFF",
        "cache_size=-131072",
    ):
        db.execute(f"PRAGMA {pragma}")
    indexes = [  # rebuilt after the load: far faster than maintaining them row by row
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            "AND tbl_name IN ('items', 'publish_attempts')"
        )
    ]
    for sql in indexes:
        db.execute("DROP INDEX " + sql.split(" ON ")[0].split()[-1])
    now = _ts(YEAR_START)
    db.executemany(
        "INSERT INTO businesses (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
        ((_hex(b, 1), f"business-{b}", f"Business {b}", now) for b in range(BUSINESSES)),
    )
    rng = np.random.default_rng(6)
    year = np.datetime64(YEAR_START.replace(tzinfo=None), "us")
    ready = year + rng.integers(0, seconds - 3600, items) * np.timedelta64(1, "s")
    item_ids = [_hex(i, 2) for i in range(items)]
    business_ids = [_hex(b, 1) for b in range(BUSINESSES)]
    db.executemany(
        "INSERT INTO items (id, business_id, kind, status, review_reasons, external_id, currency, "
        "paid, resolved_sources, publish_generation, image_published, payment_recorded, "
        "contact_confirmed, ready_at, created_at, updated_at) "
        "VALUES (?, ?, 'cost', 'published', '[]', ?, 'GBP', 0, '{}', 1, 0, 0, 0, ?, ?, ?)",
        (
            (item_ids[i], business_ids[i % BUSINESSES], f"ext-{i}", t, now, now)
            for i, t in enumerate(_texts(ready))
        ),
    )
    weights = np.array([w for *_, w in STEPS_OUTCOMES], dtype=float)
    kinds = rng.choice(len(STEPS_OUTCOMES), size=rows, p=weights / weights.sum()).tolist()
    items_of = rng.integers(0, items, rows)
    ats = _texts(ready[items_of] + rng.integers(30, 3600, rows) * np.timedelta64(1, "s"))
    latencies = rng.integers(50, 900, rows).tolist()
    db.executemany(
        "INSERT INTO publish_attempts (id, run_id, item_id, business_id, attempt_no, step, "
        "outcome, error_code, latency_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (_hex(n, 3), _hex(n // 50, 4), item_ids[i], business_ids[i % BUSINESSES],
             1 + (n % 3 == 0), *STEPS_OUTCOMES[k][:3], latencies[n], ats[n])
            for n, (i, k) in enumerate(zip(items_of.tolist(), kinds, strict=True))
        ),
    )  # fmt: skip
    for sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA journal_mode=WAL")
    db.commit()
    db.execute("ANALYZE")
    db.close()


def baseline(url: str) -> pd.DataFrame:
    """The naive way: read the whole table, then group in pandas."""
    engine = make_engine(url)
    frame = pd.read_sql("SELECT * FROM publish_attempts", engine)
    frame["day"] = pd.to_datetime(frame["at"]).dt.date
    by_day = frame.groupby(["business_id", "day", "outcome"]).size()
    reasons = frame.groupby("error_code").size().sort_values(ascending=False)
    engine.dispose()
    return pd.concat([by_day.reset_index(), reasons.reset_index()])


def ours(url: str) -> pd.DataFrame:
    """The report as the flow builds it."""
    engine = make_engine(url)
    window = ReportWindow(YEAR_START.date(), date(2025, 12, 31))
    report = build_report(engine, window, now=datetime(2026, 1, 1, tzinfo=UTC))
    engine.dispose()
    return report.by_day


def _timed(fn: Callable[[str], Any], url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(url)
    return time.perf_counter() - started, result


def _peak(fn: Callable[[str], Any], url: str) -> float:
    tracemalloc.start()
    try:
        fn(url)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main(rows: int = 1_000_000) -> None:
    """Generate, measure both ways, print the BENCH lines."""
    with tempfile.TemporaryDirectory(prefix="nomi-bench-") as folder:
        path = Path(folder) / "history.db"
        started = time.perf_counter()
        generate(path, rows)
        print(f"generated {rows} attempts in {time.perf_counter() - started:.1f} s")
        url = f"sqlite:///{path}"
        base_s, base = _timed(baseline, url)
        our_s, daily = _timed(ours, url)
        published = int(daily["published"].sum())
        base_total = int(base.loc[base["outcome"].notna(), 0].sum())
        if base_total != int(daily["attempts"].sum()):
            raise AssertionError(
                f"attempt totals differ: {base_total} vs {daily['attempts'].sum()}"
            )
        base_mb = _peak(baseline, url)
        our_mb = _peak(ours, url)
    print(
        f"baseline read_sql+groupby: {base_s:.2f} s, peak {base_mb:.0f} MiB; "
        f"report: {our_s:.2f} s, peak {our_mb:.0f} MiB; published records {published}"
    )
    print(
        f"BENCH report ratio={base_s / our_s:.3f} target=1.0 ours_s={our_s:.2f} "
        f"baseline_s={base_s:.2f} attempts={rows}"
    )
    print(
        f"BENCH report-memory ratio={base_mb / our_mb:.3f} target=5 ours_peak_mib={our_mb:.0f} "
        f"baseline_peak_mib={base_mb:.0f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
