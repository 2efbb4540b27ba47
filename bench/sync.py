"""Benchmark: a full supplier sync of 100,000 suppliers, its memory, and an incremental sync.

Prints ``BENCH sync``, ``BENCH sync-memory`` and ``BENCH sync-incremental`` against plain httpx
paging + ``executemany`` run alongside. ``python -m bench.sync [SUPPLIERS]`` runs another size.
Method and figures: docs/performance.md.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.support.businesses import connect_businesses
from bench.support.harness import (
    NO_LIMITS,
    Sandbox,
    bench_line,
    machine,
    sandbox_process,
    temp_database,
)
from connector.store.db import make_engine
from sandbox.seed import BRIGHT_SMILE

TARGET_RATIO, TARGET_MB, TARGET_INCREMENTAL = 0.8, 300, 0.03
CHANGED = 0.01
REPEATS = 3  # each kind of sync runs this often; the ratios use the median run of each


def side(
    sandbox: Sandbox, which: str, mode: str, *, tenant: str, token: str, db: str, connection: str
) -> dict[str, Any]:
    """Run one side in its own process; returns its JSON report."""
    env = os.environ | {
        "BENCH_API_URL": sandbox.base_url,
        "BENCH_TENANT": tenant,
        "BENCH_TOKEN": token,
        "BENCH_DB": db,
        "BENCH_CONNECTION": connection,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.support.sync_side", which, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{which} {mode} sync failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def change_suppliers(
    sandbox: Sandbox, tenant: str, database_url: str, count: int, *, round_no: int = 0
) -> None:
    """Rename ``count`` random suppliers in Nomi (as someone editing them would)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT nomi_id FROM suppliers"))]
    engine.dispose()
    for nomi_id in random.Random(7 + round_no).sample(ids, count):
        answer = sandbox.admin.patch(
            f"/tenants/{tenant}/suppliers/{nomi_id}",
            json={"name": f"Changed {round_no} {nomi_id[:8]}"},
        )
        answer.raise_for_status()


def _copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database (WAL included) over another with SQLite's backup API."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _median(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The report with the median time (the upper one of an even number)."""
    return sorted(reports, key=lambda r: float(r["seconds"]))[len(reports) // 2]


def run(*, suppliers: int = 100_000, repeats: int = REPEATS) -> dict[str, Any]:
    """Seed, then ``repeats`` times: the baseline and our full sync (alternating, each from an
    empty table), then ``repeats`` incremental syncs, each after another 1% was changed.

    Returns:
        The median report of each kind (``baseline``, ``full``, ``incremental``), every run's
        report (``runs``) and the supplier count (``total``).
    """
    with tempfile.TemporaryDirectory(prefix="nomi-bench-") as folder, sandbox_process() as sandbox:
        sandbox.settings(**NO_LIMITS)
        tenant = next(
            str(t["id"]) for t in sandbox.admin.get("/tenants").json() if t["name"] == BRIGHT_SMILE
        )
        seeded = sandbox.admin.post(
            f"/tenants/{tenant}/suppliers", json={"count": suppliers}, timeout=300
        )
        seeded.raise_for_status()
        total = int(seeded.json()["total"])
        sandbox.admin.post("/clock/advance", json={"seconds": 3600}).raise_for_status()
        url = temp_database(Path(folder))
        (business,) = connect_businesses(sandbox, url, [tenant], save_blocks=False)
        live = Path(sa.make_url(url).database or "")
        empty = Path(folder) / "empty.db"
        _copy_database(live, empty)  # connected, nothing synced: every full sync starts here
        common = {"tenant": tenant, "token": business.access_token}
        ours = {"db": url, "connection": str(business.connection_id)}
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "full": [], "incremental": []}
        for n in range(repeats):
            base_db = Path(folder) / f"baseline-{n}.db"
            runs["baseline"].append(
                side(sandbox, "baseline", "full", db=str(base_db), connection="", **common)
            )
            _copy_database(empty, live)
            runs["full"].append(side(sandbox, "ours", "full", **ours, **common))
        for report in runs["baseline"] + runs["full"]:
            if report["fetched"] != total:
                raise RuntimeError(f"a full sync fetched {report['fetched']} of {total}")
        changed = max(1, int(total * CHANGED))
        for n in range(repeats):
            change_suppliers(sandbox, tenant, url, changed, round_no=n)
            # An hour on before the sync: its bookmark (Nomi's clock) is then well past these
            # changes, so the next round's lookback window holds only the next round's changes.
            sandbox.admin.post("/clock/advance", json={"seconds": 3600}).raise_for_status()
            fresh = sandbox.consent(tenant)  # the hour expired the access token
            token = {"tenant": tenant, "token": fresh.access_token.get_secret_value()}
            report = side(sandbox, "ours", "incremental", **ours, **token)
            if report["updated"] != changed or report["fetched"] != changed:
                raise RuntimeError(
                    f"incremental sync {n} fetched {report['fetched']} and updated "
                    f"{report['updated']} of {changed} changed suppliers"
                )
            runs["incremental"].append(report)
    return {
        "baseline": _median(runs["baseline"]),
        "full": _median(runs["full"]),
        "incremental": _median(runs["incremental"]),
        "runs": runs,
        "total": {"n": total},
    }


def _seconds(reports: list[dict[str, Any]], digits: int) -> str:
    return "/".join(f"{r['seconds']:.{digits}f}" for r in reports)


def report(results: dict[str, Any]) -> list[str]:
    """The three BENCH lines (medians; every run's seconds alongside)."""
    base, full, incremental = results["baseline"], results["full"], results["incremental"]
    runs = results["runs"]
    n = results["total"]["n"]
    peak_mb = {kind: max(r["peak_rss_mb"] for r in runs[kind]) for kind in runs}
    return [
        bench_line(
            "sync",
            base["seconds"] / full["seconds"],
            str(TARGET_RATIO),
            ours=f"{n / full['seconds']:.0f}/s",
            baseline=f"{n / base['seconds']:.0f}/s",
            ours_s=f"{full['seconds']:.2f}",
            baseline_s=f"{base['seconds']:.2f}",
            ours_runs_s=_seconds(runs["full"], 2),
            baseline_runs_s=_seconds(runs["baseline"], 2),
            suppliers=n,
        ),
        bench_line(
            "sync-memory",
            peak_mb["full"],
            f"{TARGET_MB}(at-most)",
            ours_peak_mb=f"{peak_mb['full']:.1f}",
            baseline_peak_mb=f"{peak_mb['baseline']:.1f}",
            incremental_peak_mb=f"{peak_mb['incremental']:.1f}",
        ),
        bench_line(
            "sync-incremental",
            incremental["seconds"] / full["seconds"],
            f"{TARGET_INCREMENTAL}(at-most)",
            incremental_s=f"{incremental['seconds']:.3f}",
            full_s=f"{full['seconds']:.2f}",
            incremental_runs_s=_seconds(runs["incremental"], 3),
            fetched=incremental["fetched"],
            updated=incremental["updated"],
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark at full size (or SUPPLIERS from the command line)."""
    args = [int(a) for a in (argv or [])]
    results = run(suppliers=args[0] if args else 100_000)
    print(f"# {machine()}; connector DB: temporary SQLite file; sandbox: own process", flush=True)
    for line in report(results):
        print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
