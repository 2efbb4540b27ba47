"""One side of the intake benchmark (``ours``, ``baseline`` or the ``probe`` writer), run in its own
process so its peak RSS is its own; reads ``BENCH_*`` variables and prints one JSON line.
Method and figures: docs/performance.md.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

# NOT NULL item columns with a Python-side default, as the baseline must give them.
_BASELINE_COLUMNS = (
    "id, business_id, kind, status, review_reasons, external_id, contact_name, reference, date, "
    "due_date, currency, total, tax_amount, description, paid, contact_confirmed, "
    "resolved_sources, publish_generation, image_published, payment_recorded, created_at, "
    "updated_at"
)


def ours() -> dict[str, Any]:
    """Import the file with ``connector.items.intake.import_items``, timing every write
    transaction."""
    from pathlib import Path

    import sqlalchemy as sa
    from sqlmodel import Session

    from connector.items.intake import import_items
    from connector.store.db import make_engine

    engine = make_engine(f"sqlite:///{os.environ['BENCH_DB']}")
    spans: list[float] = []
    opened: dict[int, float] = {}

    def begun(conn: sa.Connection) -> None:  # after the writer gate's BEGIN IMMEDIATE
        if conn.get_execution_options().get("sqlite_begin", "DEFERRED") != "DEFERRED":
            opened[id(conn.connection.dbapi_connection)] = time.perf_counter()

    def ending(original: Any) -> Any:
        def end(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            finally:
                raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
                started = opened.pop(id(raw), None)
                if started is not None:
                    spans.append(time.perf_counter() - started)

        return end

    sa.event.listen(engine, "begin", begun)
    dialect = engine.dialect
    setattr(dialect, "do_commit", ending(dialect.do_commit))  # noqa: B010
    setattr(dialect, "do_rollback", ending(dialect.do_rollback))  # noqa: B010
    with Session(engine) as session:
        started = time.perf_counter()
        report = import_items(
            session,
            os.environ["BENCH_FILE"],
            business_id=uuid.UUID(os.environ["BENCH_BUSINESS"]),
            actor_email=os.environ["BENCH_ACTOR"],
            images_dir=Path(os.environ["BENCH_IMAGES"]),
        )
        seconds = time.perf_counter() - started
    engine.dispose()
    if not report.ok:
        raise RuntimeError(f"the import refused rows: {[str(e) for e in report.errors[:5]]}")
    return {
        "seconds": seconds,
        "rows": report.rows,
        "imported": len(report.imported),
        "longest_write_s": max(spans, default=0.0),
        "writes": len(spans),
    }


def baseline() -> dict[str, Any]:
    """``csv.reader`` plus one ``sqlite3`` ``executemany`` into the items table."""
    db = sqlite3.connect(os.environ["BENCH_DB"], timeout=60)
    business = uuid.UUID(os.environ["BENCH_BUSINESS"]).hex
    now = datetime.now(UTC).isoformat(sep=" ")
    count = 0
    new_id = uuid.uuid4
    if os.environ.get("BENCH_ORDERED_IDS") == "1":
        from connector.items.write import ordered_ids

        def batches() -> Any:
            while True:
                yield from ordered_ids(10_000)

        new_id = batches().__next__

    def rows(reader: Any) -> Any:
        nonlocal count
        header = next(reader)
        at = {name: n for n, name in enumerate(header)}
        for row in reader:
            count += 1
            yield (
                new_id().hex,
                business,
                row[at["kind"]],
                "review",
                '["not yet assessed"]',
                row[at["external_id"]],
                row[at["contact_name"]],
                row[at["reference"]] or None,
                row[at["date"]] or None,
                row[at["due_date"]] or None,
                row[at["currency"]] or "GBP",
                float(row[at["total"]]) if row[at["total"]] else None,
                float(row[at["tax_amount"]]) if row[at["tax_amount"]] else None,
                row[at["description"]] or None,
                row[at["paid"]] == "true",
                False,
                "{}",
                1,
                False,
                False,
                now,
                now,
            )

    marks = ", ".join("?" for _ in _BASELINE_COLUMNS.split(","))
    with open(os.environ["BENCH_FILE"], newline="", encoding="utf-8-sig") as handle:
        started = time.perf_counter()
        db.executemany(
            f"INSERT INTO items ({_BASELINE_COLUMNS}) VALUES ({marks})",
            rows(csv.reader(handle)),
        )
        db.commit()
        seconds = time.perf_counter() - started
    db.close()
    return {"seconds": seconds, "rows": count}


def probe() -> dict[str, Any]:
    """Write one row every 50 ms until stdin closes; the longest write, lock wait included."""
    db = sqlite3.connect(os.environ["BENCH_DB"], timeout=60, isolation_level=None)
    business = uuid.UUID(os.environ["BENCH_BUSINESS"]).hex
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    longest, writes = 0.0, 0
    print("ready", flush=True)
    while not stop.wait(0.05):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE businesses SET name = name WHERE id = ?", (business,))
        db.execute("COMMIT")
        longest = max(longest, time.perf_counter() - started)
        writes += 1
    db.close()
    return {"writes": writes, "longest_wait_s": longest}


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    """Run one side and print its JSON line."""
    side = argv[0]
    result = {"ours": ours, "baseline": baseline, "probe": probe}[side]()
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
