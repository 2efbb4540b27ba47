"""History rows written through the store, shaped like the demo's day and like ninety busy days.

Both generators return what they wrote (the expected numbers), so tests compare the report
against the rows rather than against constants.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from connector.history.records import record_attempts, record_publish_run
from connector.rules.vocabulary import ItemStatus
from connector.store.models import Business
from tests.connector.factories import make_business, make_connection, make_item

#: The demo's held items: four have no category (each names its supplier), one a new supplier.
DEMO_REVIEW = [
    (
        "bs-0004",
        "Royal Mail",
        ["no category: set one on the item or add a supplier rule for 'Royal Mail'"],
    ),
    ("bs-0102", "Costco", ["no category: set one on the item or add a supplier rule for 'Costco'"]),
    (
        "bs-0103",
        "O'Brien's Cafe",
        ["no category: set one on the item or add a supplier rule for 'O'Brien's Cafe'"],
    ),
    ("bs-0104", "Wickes", ["no category: set one on the item or add a supplier rule for 'Wickes'"]),
    (
        "bs-0005",
        "Kwik Fit",
        [
            "new supplier 'Kwik Fit' is not in Nomi: confirm creating it or map the item to an "
            "existing supplier"
        ],
    ),
]


@dataclass
class Written:
    """What a generator wrote."""

    businesses: list[str] = field(default_factory=list)
    published: int = 0
    failed: int = 0
    in_review: int = 0
    ready: int = 0
    days: set[date] = field(default_factory=set)
    published_per_business: dict[str, int] = field(default_factory=dict)
    flow_run_ids: set[uuid.UUID] = field(default_factory=set)


def _attempt(
    item_id: uuid.UUID, business: Business, run_id: uuid.UUID, at: datetime, **fields: object
) -> dict[str, object]:
    """One attempt row; every row has the same keys (``record_attempts`` inserts them at once)."""
    optional = ["http_status", "nomi_record_id", "error_code", "error_message", "latency_ms"]
    return {
        "run_id": run_id,
        "item_id": item_id,
        "business_id": business.id,
        "at": at,
        **dict.fromkeys(optional),
        **fields,
    }


def demo_like(session: Session, now: datetime) -> Written:
    """The demo's day: 9 published (one with an image upload), one rejected, 5 held in review,
    one Ready with a transient failure, all within the last hour."""
    rng = random.Random(7)
    written = Written()
    business = make_business(session, slug="bright-smile", name="Bright Smile Dental Ltd")
    make_connection(session, business=business, consent_expires_at=now + timedelta(days=364))
    written.businesses.append(business.slug)
    run_id, flow_run_id = uuid.uuid4(), uuid.uuid4()
    written.flow_run_ids.add(flow_run_id)
    rows: list[dict[str, object]] = []
    for n in range(9):
        ready_at = now - timedelta(minutes=30, seconds=n * 7)
        at = ready_at + timedelta(seconds=1 + n * 0.25)
        item = make_item(
            session,
            business=business,
            status=ItemStatus.PUBLISHED,
            external_id=f"bs-00{10 + n}",
            contact_name=rng.choice(["Henry Schein Minerva", "BT Business", "Dental Directory"]),
            ready_at=ready_at,
            nomi_record_id=f"exp-{n}",
        )
        rows.append(
            _attempt(
                item.id,
                business,
                run_id,
                at,
                step="expense",
                outcome="published",
                http_status=201,
                nomi_record_id=f"exp-{n}",
                latency_ms=40 + 9 * n,
            )
        )
        if n == 0:
            rows.append(
                _attempt(
                    item.id,
                    business,
                    run_id,
                    at,
                    step="attachment",
                    outcome="published",
                    http_status=200,
                    latency_ms=120,
                )
            )
    rejected = make_item(
        session, business=business, external_id="bs-0101", contact_name="NHS England"
    )
    rows.append(
        _attempt(
            rejected.id,
            business,
            run_id,
            now - timedelta(minutes=29),
            step="expense",
            outcome="rejected",
            http_status=422,
            error_code="validation_failed",
            error_message="date is in a locked period",
            latency_ms=35,
        )
    )
    for external_id, supplier, reasons in DEMO_REVIEW:
        make_item(
            session,
            business=business,
            status=ItemStatus.REVIEW,
            external_id=external_id,
            contact_name=supplier,
            review_reasons=reasons,
        )
    record_attempts(session, rows)
    record_publish_run(
        session,
        id=run_id,
        flow_run_id=flow_run_id,
        trigger="manual",
        business_id=business.id,
        started_at=now - timedelta(minutes=31),
        finished_at=now - timedelta(minutes=28),
        claimed=10,
        published=9,
        failed=1,
    )
    session.commit()
    written.published, written.failed = 9, 1
    written.in_review, written.ready = len(DEMO_REVIEW), 1
    written.days = {(now - timedelta(minutes=30)).date()}
    written.published_per_business = {business.slug: 9}
    return written


CODES = ["validation_failed", "duplicate_number", "currency_mismatch", None]
SUPPLIERS = ["Acme Ltd", "Bolt & Co", "Costco", "Wickes", "Royal Mail"]


def ninety_days(session: Session, until: date, *, businesses: int = 3) -> Written:
    """Ninety days of history ending on ``until`` for a few businesses: a run per business per day
    with 0-6 items, about one in eight failing once (a transient 503 or a rejection) before it
    is published, Ready-to-Published latencies from seconds to hours, 1-3 items left in review."""
    rng = random.Random(90)
    written = Written()
    first = until - timedelta(days=89)
    for b in range(businesses):
        business = make_business(session, slug=f"biz-{b}", name=f"Business {b} Ltd")
        make_connection(
            session,
            business=business,
            consent_expires_at=datetime.now(UTC) + timedelta(days=20 + b * 100),
        )
        written.businesses.append(business.slug)
        written.published_per_business[business.slug] = 0
        rows: list[dict[str, object]] = []
        for d in range(90):
            day = first + timedelta(days=d)
            count = rng.randint(0, 6) + (4 if b == 0 else 0)
            if count == 0:
                continue
            run_id, flow_run_id = uuid.uuid4(), uuid.uuid4()
            written.flow_run_ids.add(flow_run_id)
            start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            for n in range(count):
                ready_at = start - timedelta(
                    seconds=rng.choice([5, 60, 900, 3600, 7200]) * rng.random()
                )
                at = start + timedelta(minutes=n)
                supplier = rng.choice(SUPPLIERS)
                item = make_item(
                    session,
                    business=business,
                    status=ItemStatus.PUBLISHED,
                    contact_name=supplier,
                    ready_at=ready_at,
                )
                if rng.random() < 0.125:
                    code = rng.choice(CODES)
                    rows.append(
                        _attempt(
                            item.id,
                            business,
                            run_id,
                            at - timedelta(seconds=20),
                            step="expense",
                            outcome="transient" if code is None else "rejected",
                            http_status=503 if code is None else 422,
                            error_code=code,
                            latency_ms=rng.randint(200, 2000),
                        )
                    )
                    written.failed += 1
                rows.append(
                    _attempt(
                        item.id,
                        business,
                        run_id,
                        at,
                        step="expense",
                        outcome="published",
                        http_status=201,
                        latency_ms=rng.randint(30, 400),
                    )
                )
                written.published += 1
                written.published_per_business[business.slug] += 1
                written.days.add(day)
            record_publish_run(
                session,
                id=run_id,
                flow_run_id=flow_run_id,
                trigger="schedule",
                business_id=business.id,
                started_at=start,
                finished_at=start + timedelta(minutes=count),
                claimed=count,
                published=count,
            )
        record_attempts(session, rows)
        for n in range(1 + b):
            make_item(
                session,
                business=business,
                status=ItemStatus.REVIEW,
                contact_name=SUPPLIERS[n],
                review_reasons=[
                    f"no category: set one on the item or add a supplier rule for '{SUPPLIERS[n]}'"
                ],
            )
            written.in_review += 1
        session.commit()
    return written
