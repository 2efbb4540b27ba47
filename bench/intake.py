"""Benchmark: importing a 200,000-row CSV of items, its peak memory and its write transactions.

Prints ``BENCH intake``, ``BENCH intake-memory`` and ``BENCH intake-write-lock`` against a plain
``csv.reader`` + ``executemany`` baseline run alongside. ``python -m bench.intake [ROWS]`` runs
another size. Method and figures: docs/performance.md.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bench.support.harness import bench_line, machine, temp_database
from connector.rules.names import normalise_name
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.db import make_engine
from connector.store.models import (
    Business,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Membership,
    Supplier,
    TaxRate,
    User,
)

TARGET_RATIO, TARGET_MB, TARGET_LOCK_S = 0.5, 300, 1.0
ROWS = 200_000
CONNECTED_ROWS = 20_000
REPEATS = 3  # baseline and ours alternate; the ratio uses the median run of each
ACTOR = "clerk@bench.example"
HEADER = [
    "external_id",
    "kind",
    "contact_name",
    "reference",
    "date",
    "due_date",
    "currency",
    "total",
    "tax_amount",
    "description",
    "category",
    "tax_rate",
    "paid",
    "payment_method",
    "claimant_email",
    "claimant_nomi_user_id",
    "image",
]
_CONTACTS = {
    "cost": ["Staples UK", "British Gas Business", "Henry Schein Minerva", "Café Nero Ltd"],
    "sales": ["NHS England", "Bupa Dental Care", "Zoë Whitfield"],
    "expense_claim": ["Addison Lee", "Great Western Railway", "Pret A Manger"],
}
_PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"


def write_file(folder: Path, rows: int) -> Path:
    """The CSV of ``rows`` items (deterministic) and its five images, in ``folder``."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for n in range(5):
        (images / f"receipt-{n}.png").write_bytes(_PNG + bytes([n]) * 2048)
    path = folder / f"items-{rows}.csv"
    kinds = ("cost", "sales", "expense_claim")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            kind = kinds[n % 3]
            contacts = _CONTACTS[kind]
            day = 1 + n % 28
            writer.writerow(
                [
                    f"bench-{n:07d}",
                    kind,
                    contacts[n % len(contacts)],
                    f"INV-{n:07d}",
                    f"2026-03-{day:02d}",
                    f"2026-04-{day:02d}" if kind != "expense_claim" else "",
                    "GBP",
                    f"{100 + n % 900}.{n % 100:02d}",
                    f"{(100 + n % 900) // 6}.00",
                    f"Supplies, order {n} (March)" if n % 4 else "",
                    "",
                    "",
                    "true" if kind == "expense_claim" else "false",
                    "",
                    "claims@bench.example" if kind == "expense_claim" else "",
                    "",
                    f"images/receipt-{n % 5}.png" if n % 10 == 0 else "",
                ]
            )
    return path


def seed(database_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two businesses with the importing member: one never connected, one with a connection,
    its lists and a supplier rule (as after a first sync). Returns their ids."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        user = User(email=ACTOR, name="Clerk")
        off = Business(slug="bench-unconnected", name="Bench Dental Ltd")
        on = Business(slug="bench-connected", name="Bench Smile Ltd")
        session.add_all([user, off, on])
        session.flush()
        for business in (off, on):
            session.add(Membership(user_id=user.id, business_id=business.id, role=Role.STANDARD))
        connection = Connection(
            business_id=on.id,
            nomi_tenant_id="tenant-bench",
            organisation_name=on.name,
            status=ConnectionStatus.CONNECTED,
            scopes=["offline_access", "contacts.read", "expenses.write", "sales.write"],
            connected_at=datetime.now(UTC),
        )
        session.add(connection)
        session.flush()
        session.add_all(
            [
                ConnectionSettings(connection_id=connection.id, auto_publish=False),
                Category(
                    connection_id=connection.id,
                    nomi_id="cat-453",
                    code="453",
                    name="Office Expenses",
                    type="EXPENSE",
                ),
                TaxRate(
                    connection_id=connection.id,
                    nomi_id="tax-20",
                    code="STD20",
                    name="Standard 20%",
                    rate=Decimal("20"),
                    applies_to="BOTH",
                ),
                Supplier(
                    connection_id=connection.id,
                    nomi_id="sup-1",
                    name="Staples UK",
                    name_normalised=normalise_name("Staples UK"),
                ),
                ContactRule(
                    connection_id=connection.id,
                    kind="supplier",
                    name="Staples UK",
                    name_normalised=normalise_name("Staples UK"),
                    category_nomi_id="cat-453",
                ),
            ]
        )
        session.commit()
        ids = (off.id, on.id)
    engine.dispose()
    return ids


def _copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database (WAL included) over another with SQLite's backup API."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def side(which: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one side in its own process (ours with the probe writer beside it)."""
    command = [sys.executable, "-m", "bench.support.intake_side"]
    full = os.environ | env
    if which != "ours":
        done = subprocess.run(
            [*command, which], env=full, capture_output=True, text=True, timeout=1800, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{which} failed: {done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    probe = subprocess.Popen(
        [*command, "probe"],
        env=full,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert probe.stdout is not None
    try:
        probe.stdout.readline()  # "ready"
        result = _ours(command, full)
    finally:
        out, err = probe.communicate(timeout=60)
    if probe.returncode != 0:
        raise RuntimeError(f"the probe writer failed: {err[-3000:]}")
    probed = json.loads(out.strip().splitlines()[-1])
    result["probe_longest_wait_s"] = probed["longest_wait_s"]
    result["probe_writes"] = probed["writes"]
    return result


def _ours(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [*command, "ours"], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ours failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _median(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The report with the median time (the upper one of an even number)."""
    return sorted(reports, key=lambda r: float(r["seconds"]))[len(reports) // 2]


def run(
    *, rows: int = ROWS, connected_rows: int = CONNECTED_ROWS, repeats: int = REPEATS
) -> dict[str, Any]:
    """Write the files, then ``repeats`` times the baseline and ours (each on a fresh copy of the
    seeded database), then ours once into a connected business.

    Returns:
        The median report of each side (``baseline``, ``ours``), every run (``runs``), the
        connected run (``connected``) and the sizes.
    """
    with tempfile.TemporaryDirectory(prefix="nomi-bench-intake-") as name:
        folder = Path(name)
        big = write_file(folder / "data", rows)
        small = write_file(folder / "data", connected_rows)
        url = temp_database(folder)
        live = Path(folder / "connector.db")
        business, on = seed(url)
        empty = folder / "empty.db"
        _copy_database(live, empty)
        common = {"BENCH_DB": str(live), "BENCH_ACTOR": ACTOR}
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
        for n in range(repeats):
            _copy_database(empty, live)
            env = common | {"BENCH_FILE": str(big), "BENCH_BUSINESS": str(business)}
            runs["baseline"].append(side("baseline", env))
            _copy_database(empty, live)
            env |= {"BENCH_IMAGES": str(folder / f"images-{n}")}
            runs["ours"].append(side("ours", env))
        for report in runs["baseline"] + runs["ours"]:
            if report["rows"] != rows:
                raise RuntimeError(f"a run read {report['rows']} of {rows} rows")
        if any(r["imported"] != rows for r in runs["ours"]):
            raise RuntimeError("an import did not import every row")
        _copy_database(empty, live)
        env = common | {"BENCH_FILE": str(big), "BENCH_BUSINESS": str(business)}
        ordered = side("baseline", env | {"BENCH_ORDERED_IDS": "1"})
        _copy_database(empty, live)
        connected = side(
            "ours",
            common
            | {
                "BENCH_FILE": str(small),
                "BENCH_BUSINESS": str(on),
                "BENCH_IMAGES": str(folder / "images-connected"),
            },
        )
        if connected["imported"] != connected_rows:
            raise RuntimeError("the connected import did not import every row")
    return {
        "baseline": _median(runs["baseline"]),
        "ours": _median(runs["ours"]),
        "runs": runs,
        "connected": connected,
        "baseline_ordered_ids": ordered,
        "rows": rows,
        "connected_rows": connected_rows,
    }


def _seconds(reports: list[dict[str, Any]]) -> str:
    return "/".join(f"{r['seconds']:.2f}" for r in reports)


def report(results: dict[str, Any]) -> list[str]:
    """The three BENCH lines (medians; every run alongside)."""
    base, ours, connected = results["baseline"], results["ours"], results["connected"]
    runs, rows = results["runs"], results["rows"]
    longest = max(r["longest_write_s"] for r in [*runs["ours"], connected])
    waited = max(r["probe_longest_wait_s"] for r in [*runs["ours"], connected])
    return [
        bench_line(
            "intake",
            base["seconds"] / ours["seconds"],
            str(TARGET_RATIO),
            ours=f"{rows / ours['seconds']:.0f}/s",
            baseline=f"{rows / base['seconds']:.0f}/s",
            ours_s=f"{ours['seconds']:.2f}",
            baseline_s=f"{base['seconds']:.2f}",
            ours_runs_s=_seconds(runs["ours"]),
            baseline_runs_s=_seconds(runs["baseline"]),
            connected=f"{results['connected_rows'] / connected['seconds']:.0f}/s",
            baseline_v7_ids=f"{rows / results['baseline_ordered_ids']['seconds']:.0f}/s",
            rows=rows,
        ),
        bench_line(
            "intake-memory",
            max(r["peak_rss_mb"] for r in runs["ours"]),
            f"{TARGET_MB}(at-most)",
            ours_peak_mb=f"{max(r['peak_rss_mb'] for r in runs['ours']):.1f}",
            baseline_peak_mb=f"{max(r['peak_rss_mb'] for r in runs['baseline']):.1f}",
            connected_peak_mb=f"{connected['peak_rss_mb']:.1f}",
        ),
        bench_line(
            "intake-write-lock",
            longest,
            f"{TARGET_LOCK_S:g}(at-most)",
            unconnected_s=f"{max(r['longest_write_s'] for r in runs['ours']):.3f}",
            connected_s=f"{connected['longest_write_s']:.3f}",
            writes=sum(r["writes"] for r in runs["ours"]) + connected["writes"],
            other_writer_longest_wait_s=f"{waited:.3f}",
            other_writes=sum(r["probe_writes"] for r in [*runs["ours"], connected]),
            connected_rows=results["connected_rows"],
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark at full size (or ROWS from the command line)."""
    args = [int(a) for a in (argv or [])]
    results = run(rows=args[0] if args else ROWS)
    print(f"# {machine()}; connector DB: temporary SQLite file; each side its own process")
    for line in report(results):
        print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
