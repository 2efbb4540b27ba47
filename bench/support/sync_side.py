"""One side of the sync benchmark, run in its own process so its peak RSS is its own.

``python -m bench.support.sync_side ours|baseline full|incremental`` reads ``BENCH_API_URL``,
``BENCH_TENANT``, ``BENCH_TOKEN`` (never printed), ``BENCH_DB`` (ours: connector database URL;
baseline: SQLite file path) and ``BENCH_CONNECTION`` (ours), syncs the suppliers and prints one
JSON line: ``{"seconds", "fetched", "inserted", "updated", "peak_rss_mb"}``. Imports stay minimal
on both sides so the memory figures compare the work, not the import lists.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import uuid
from typing import Any

import httpx

PAGE_SIZE = 1000


def ours(mode: str) -> dict[str, Any]:
    """Sync the suppliers with ``connector.sync.lists.sync_list`` (what the sync flow's task
    runs)."""
    from connector.store.db import make_engine
    from connector.sync.lists import sync_list
    from nomi.client import NomiClient, StaticTokenProvider

    engine = make_engine(os.environ["BENCH_DB"])
    tokens = StaticTokenProvider(os.environ["BENCH_TOKEN"])
    with NomiClient(os.environ["BENCH_API_URL"], os.environ["BENCH_TENANT"], tokens) as nomi:
        started = time.perf_counter()
        report = sync_list(
            engine,
            nomi,
            connection_id=uuid.UUID(os.environ["BENCH_CONNECTION"]),
            list_name="suppliers",
            mode="full" if mode == "full" else "incremental",
        )
        seconds = time.perf_counter() - started
    if report.status.value != "ok":
        raise RuntimeError(f"sync ended {report.status.value}: {report.error}")
    return {
        "seconds": seconds,
        "fetched": report.fetched,
        "inserted": report.inserted,
        "updated": report.updated,
    }


def baseline() -> dict[str, Any]:
    """Page the suppliers with plain httpx and bulk-insert each page with sqlite3 executemany."""
    db = sqlite3.connect(os.environ["BENCH_DB"])
    db.execute(
        "CREATE TABLE IF NOT EXISTS suppliers (nomi_id TEXT PRIMARY KEY, name TEXT, status TEXT, "
        "tax_number TEXT, default_tax_rate_id TEXT, default_category_id TEXT, updated_at TEXT)"
    )
    db.commit()
    headers = {
        "Authorization": f"Bearer {os.environ['BENCH_TOKEN']}",
        "Nomi-Tenant-Id": os.environ["BENCH_TENANT"],
    }
    fetched = 0
    url = f"{os.environ['BENCH_API_URL']}/api/v1/suppliers"
    with httpx.Client(timeout=60, headers=headers) as http:
        started = time.perf_counter()
        page = 1
        while True:
            params: dict[str, Any] = {
                "page": page,
                "page_size": PAGE_SIZE,
                "include_archived": "true",
            }
            answer = http.get(url, params=params)
            answer.raise_for_status()
            body = answer.json()
            rows = [
                (
                    r["id"],
                    r["name"],
                    r.get("status"),
                    r.get("tax_number"),
                    r.get("default_tax_rate_id"),
                    r.get("default_category_id"),
                    r.get("updated_at"),
                )
                for r in body["items"]
            ]
            db.executemany("INSERT OR REPLACE INTO suppliers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.commit()
            fetched += len(rows)
            if page >= body["pagination"]["page_count"] or not rows:
                break
            page += 1
        seconds = time.perf_counter() - started
    db.close()
    return {"seconds": seconds, "fetched": fetched, "inserted": fetched, "updated": 0}


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB.

    Not ``ru_maxrss``: Linux carries it across fork and exec, so a child started by a large parent
    reports the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    """Run one side and print its JSON line."""
    side, mode = argv[0], argv[1] if len(argv) > 1 else "full"
    result = ours(mode) if side == "ours" else baseline()
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
