"""Benchmark: a full supplier sync of 100,000 suppliers, memory, and an incremental sync.

Set-up (not timed): a ``nomi-sandbox --test-mode`` process with every limit off, 100,000 suppliers
bulk-seeded into Bright Smile (``POST /_admin/tenants/{id}/suppliers``), the sandbox clock moved
an hour on (so the seeded records are older than the incremental lookback), one consent, and a
connected business in a temporary SQLite connector database.

Each side runs in its own process (``python -m bench._sync_side``) and reports its own time (the
work only, not interpreter start-up) and its peak RSS (``VmHWM`` of its own process):

* baseline: pages of 1000 with plain httpx, ``sqlite3`` ``executemany`` into one table per page;
* ours: ``connector.sync.sync_list(..., list_name="suppliers", mode="full")`` (the sync flow's
  task body: upserts, counts, archive pass, ``SyncRun`` row, bookmark);
* then 1% of the suppliers are changed through the admin API and ours runs ``incremental``.

Prints ``BENCH sync ratio=<baseline s / our s> target=0.8``, ``BENCH sync-memory
ratio=<our peak MB> target=300`` (at most) and ``BENCH sync-incremental ratio=<incremental s /
full s> target=0.03`` (at most). ``python -m bench.sync [SUPPLIERS]`` runs another size.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._harness import (
    NO_LIMITS,
    Sandbox,
    bench_line,
    connect_businesses,
    machine,
    sandbox_process,
    temp_database,
)
from connector.db import make_engine
from sandbox.seed import BRIGHT_SMILE

TARGET_RATIO, TARGET_MB, TARGET_INCREMENTAL = 0.8, 300, 0.03
CHANGED = 0.01


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
        [sys.executable, "-m", "bench._sync_side", which, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{which} {mode} sync failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def change_suppliers(sandbox: Sandbox, tenant: str, database_url: str, count: int) -> None:
    """Rename ``count`` random suppliers in Nomi (as someone editing them would)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT nomi_id FROM suppliers"))]
    engine.dispose()
    for nomi_id in random.Random(7).sample(ids, count):
        answer = sandbox.admin.patch(
            f"/tenants/{tenant}/suppliers/{nomi_id}", json={"name": f"Changed {nomi_id[:8]}"}
        )
        answer.raise_for_status()


def run(*, suppliers: int = 100_000) -> dict[str, dict[str, Any]]:
    """Seed, run the baseline, our full sync and our incremental sync; returns their reports."""
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
        common = {"tenant": tenant, "token": business.access_token}
        base = side(
            sandbox,
            "baseline",
            "full",
            db=str(Path(folder) / "baseline.db"),
            connection="",
            **common,
        )
        full = side(
            sandbox, "ours", "full", db=url, connection=str(business.connection_id), **common
        )
        for report in (base, full):
            if report["fetched"] != total:
                raise RuntimeError(f"a full sync fetched {report['fetched']} of {total}")
        changed = max(1, int(total * CHANGED))
        change_suppliers(sandbox, tenant, url, changed)
        incremental = side(
            sandbox, "ours", "incremental", db=url, connection=str(business.connection_id), **common
        )
        if incremental["updated"] != changed:
            raise RuntimeError(f"incremental sync updated {incremental['updated']} of {changed}")
    return {"baseline": base, "full": full, "incremental": incremental, "total": {"n": total}}


def report(results: dict[str, dict[str, Any]]) -> list[str]:
    """The three BENCH lines."""
    base, full, incremental = results["baseline"], results["full"], results["incremental"]
    n = results["total"]["n"]
    return [
        bench_line(
            "sync",
            base["seconds"] / full["seconds"],
            str(TARGET_RATIO),
            ours=f"{n / full['seconds']:.0f}/s",
            baseline=f"{n / base['seconds']:.0f}/s",
            ours_s=f"{full['seconds']:.2f}",
            baseline_s=f"{base['seconds']:.2f}",
            suppliers=n,
        ),
        bench_line(
            "sync-memory",
            full["peak_rss_mb"],
            f"{TARGET_MB}(at-most)",
            ours_peak_mb=f"{full['peak_rss_mb']:.1f}",
            baseline_peak_mb=f"{base['peak_rss_mb']:.1f}",
            incremental_peak_mb=f"{incremental['peak_rss_mb']:.1f}",
        ),
        bench_line(
            "sync-incremental",
            incremental["seconds"] / full["seconds"],
            f"{TARGET_INCREMENTAL}(at-most)",
            incremental_s=f"{incremental['seconds']:.3f}",
            full_s=f"{full['seconds']:.2f}",
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
