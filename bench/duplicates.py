"""Benchmark: the possible-duplicate look-up of assessment on a business with 100,000 items.

Prints ``BENCH duplicate-check``: milliseconds per assessed item spent finding its possible
duplicates (``connector.items.assess.possible_duplicates``, one query per batch of 500), with the
whole assessment per item alongside. ``python -m bench.duplicates [ITEMS]`` runs another size.
Method and figures: docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.support.harness import bench_line, machine, temp_database
from connector.items.assess import BATCH, possible_duplicates, reassess
from connector.rules.names import contact_key
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import make_engine
from connector.store.models import Business, Connection, Item

TARGET_MS = 5.0
SUPPLIERS = 2_000
NEW = 2_000  # the items assessed (a big import's worth); a tenth of them are look-alikes
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _item(business_id: uuid.UUID, n: int, rng: random.Random, status: str) -> dict[str, Any]:
    name = f"Supplier {rng.randrange(SUPPLIERS)} Ltd"
    return {
        "id": uuid.uuid4(),
        "business_id": business_id,
        "kind": "cost",
        "status": status,
        "review_reasons": [],
        "external_id": f"item-{n:07d}",
        "contact_name": name,
        "supplier_key": contact_key(name),
        "reference": f"INV-{n}",
        "date": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365)),
        "currency": "GBP",
        "total": Decimal(rng.randrange(100, 100_000)) / 100,
        "tax_amount": Decimal(0),
        "paid": False,
        "contact_confirmed": True,
        "resolved_sources": {},
        "publish_generation": 1,
        "image_published": False,
        "payment_recorded": False,
        "created_at": START + dt.timedelta(seconds=n),
        "updated_at": START,
    }


def seed(url: str, items: int, *, seed_value: int = 21) -> uuid.UUID:
    """A connected business with ``items`` published items and ``NEW`` new ones in review."""
    rng = random.Random(seed_value)
    engine = make_engine(url)
    try:
        with Session(engine) as db, db.begin():
            business = Business(slug="bench", name="Bench Ltd")
            db.add(business)
            db.flush()
            db.add(Connection(business_id=business.id, status="connected"))
            db.flush()
            table = table_of(Item)
            old = [_item(business.id, n, rng, ItemStatus.PUBLISHED) for n in range(items)]
            for start in range(0, items, 10_000):
                db.execute(sa.insert(table), old[start : start + 10_000])
            new = [_item(business.id, items + n, rng, ItemStatus.REVIEW) for n in range(NEW)]
            for row in new[:: NEW // (NEW // 10)]:  # a look-alike of a random published item
                twin = old[rng.randrange(items)]
                row.update({k: twin[k] for k in ("contact_name", "supplier_key", "date", "total")})
            db.execute(sa.insert(table), new)
            return business.id
    finally:
        engine.dispose()


def measure(url: str, business_id: uuid.UUID) -> dict[str, Any]:
    """Time the look-up over the new items in assessment's batches, then a whole assessment."""
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            table = table_of(Item)
            rows = db.execute(
                sa.select(table).where(table.c.status == ItemStatus.REVIEW).order_by(table.c.id)
            ).all()
            started = time.perf_counter()
            held = 0
            for start in range(0, len(rows), BATCH):
                held += len(possible_duplicates(db, business_id, rows[start : start + BATCH]))
            lookup_s = time.perf_counter() - started
            started = time.perf_counter()
            report = reassess(db, business_id=business_id)
            db.commit()
            assess_s = time.perf_counter() - started
        return {
            "assessed": len(rows),
            "held": held,
            "review": report.review,
            "lookup_ms": 1000 * lookup_s / max(1, len(rows)),
            "assess_ms": 1000 * assess_s / max(1, len(rows)),
        }
    finally:
        engine.dispose()


def run(items: int = 100_000) -> dict[str, Any]:
    """Seed a database of ``items`` items in a temporary folder and measure it."""
    with tempfile.TemporaryDirectory(prefix="nomi-bench-dups-") as folder:
        url = temp_database(Path(folder))
        started = time.perf_counter()
        business_id = seed(url, items)
        seeded_s = time.perf_counter() - started
        return {"items": items, "seed_s": seeded_s, **measure(url, business_id)}


def report(results: dict[str, Any]) -> list[str]:
    """The BENCH line of a run."""
    return [
        bench_line(
            "duplicate-check",
            results["lookup_ms"],
            f"{TARGET_MS:g}(at-most)",
            items=results["items"],
            assessed=results["assessed"],
            held=results["held"],
            assess_ms_per_item=f"{results['assess_ms']:.3f}",
        )
    ]


def main(items: int = 100_000) -> None:
    """Seed, measure, print the BENCH line."""
    print(f"machine: {machine()}")
    results = run(items)
    print(f"seeded {results['items']} items in {results['seed_s']:.1f} s at {utcnow():%H:%M}")
    for line in report(results):
        print(line, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
