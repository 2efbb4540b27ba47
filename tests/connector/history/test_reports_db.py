"""build_report through the SQL loaders, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.history.queries import ReportWindow
from connector.history.records import (
    record_attempt,
    record_publish_run,
    record_sync_run,
)
from connector.history.report.build import build_report
from connector.rules.vocabulary import ItemStatus
from connector.sync.bookmarks import set_bookmark
from tests.connector.factories import make_business, make_connection, make_item

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = ReportWindow(date(2026, 3, 1), date(2026, 3, 10))


@pytest.fixture
def history(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        acme = make_business(s, slug="acme")
        bolt = make_business(s, slug="bolt")
        conn = make_connection(s, business=acme, consent_expires_at=NOW + timedelta(days=3))
        make_connection(s, business=bolt, consent_expires_at=NOW + timedelta(days=300))
        run = uuid.uuid4()
        for minutes in (2, 4, 6):
            item = make_item(
                s,
                business=acme,
                status=ItemStatus.PUBLISHED,
                ready_at=NOW - timedelta(minutes=minutes),
            )
            record_attempt(
                s,
                run_id=run,
                item_id=item.id,
                business_id=acme.id,
                step="expense",
                outcome="published",
                at=NOW - timedelta(minutes=1),
            )
        recovered = make_item(
            s, business=acme, status=ItemStatus.PUBLISHED, ready_at=NOW - timedelta(minutes=8)
        )
        record_attempt(  # an earlier call had landed: found by source_id, counts as published
            s,
            run_id=run,
            item_id=recovered.id,
            business_id=acme.id,
            step="expense",
            outcome="recovered",
            at=NOW - timedelta(minutes=1),
        )
        old = make_item(
            s, business=acme, status=ItemStatus.PUBLISHED, ready_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        record_attempt(  # outside the window: ignored
            s,
            run_id=run,
            item_id=old.id,
            business_id=acme.id,
            step="expense",
            outcome="published",
            at=datetime(2026, 1, 2, tzinfo=UTC),
        )
        stuck = make_item(s, business=bolt, ready_at=NOW - timedelta(days=4))
        record_attempt(
            s,
            run_id=run,
            item_id=stuck.id,
            business_id=bolt.id,
            step="sales_invoice",
            outcome="rejected",
            error_code="VALIDATION",
            at=NOW - timedelta(days=2),
        )
        make_item(s, business=bolt, status=ItemStatus.REVIEW, review_reasons=["no category"])
        record_publish_run(
            s,
            id=run,
            trigger="schedule",
            started_at=NOW - timedelta(minutes=2),
            finished_at=NOW - timedelta(minutes=1),
            claimed=4,
            published=3,
            failed=1,
        )
        record_sync_run(
            s,
            connection_id=conn.id,
            list_name="suppliers",
            mode="incremental",
            status="failed",
            error="boom",
            started_at=NOW - timedelta(hours=1),
        )
        set_bookmark(s, connection_id=conn.id, list_name="suppliers", bookmark=NOW)
        s.commit()


def test_build_report_reads_the_window_and_computes_every_table(
    engine: Engine, history: None
) -> None:
    report = build_report(engine, WINDOW, now=NOW)

    assert report.totals["published"] == 4
    assert report.totals["failed"] == 1
    assert report.totals["failure_rate_pct"] == 20.0
    assert report.totals["held"] == 1  # the item in review now
    assert report.totals["latency_median_s"] == pytest.approx(240, abs=0.5)
    by_business = report.by_business.set_index("business")
    assert by_business.loc["acme", "published"] == 4
    assert by_business.loc["bolt", "failed"] == 1
    assert by_business.loc["bolt", "in_review"] == 1
    assert report.failures[["source", "reason", "count"]].values.tolist() == [
        ["nomi", "VALIDATION", 1],
        ["review", "no category", 1],
    ]
    assert report.failures_by_supplier["supplier"].tolist() == ["Office Supplies Ltd"] * 2
    assert report.runs[["trigger", "runs", "published"]].values.tolist() == [["schedule", 1, 3]]
    assert report.runs["mean_duration_s"].iloc[0] == pytest.approx(60, abs=0.5)
    assert report.recent_runs["business"].isna().all()  # an all-business run
    assert report.waiting["status"].iloc[0] == "ready"
    assert report.waiting["waiting_hours"].iloc[0] == pytest.approx(96, abs=0.01)
    sync = report.sync.set_index("list_name")
    assert sync.loc["suppliers", ["runs", "failed_runs"]].tolist() == [1, 1]
    assert not sync.loc["suppliers", "stale"]
    assert report.expiring["business"].tolist() == ["acme"]
    assert report.expiring["days_left"].tolist() == [3]


def test_build_report_for_one_business_sees_only_that_business(
    engine: Engine, history: None
) -> None:
    report = build_report(engine, ReportWindow(WINDOW.since, WINDOW.until, "bolt"), now=NOW)

    assert report.by_business["business"].tolist() == ["bolt"]
    assert report.totals["published"] == 0
    assert report.latency.empty
    assert report.runs.empty
    assert report.sync.empty
    assert report.expiring.empty
    assert set(report.waiting["business"]) == {"bolt"}
