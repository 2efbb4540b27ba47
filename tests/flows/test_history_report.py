"""publish-history-report end to end: history rows in, artifacts (read back by key) and HTML out."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from connector.history.records import record_attempt, record_publish_run
from connector.rules.vocabulary import ItemStatus
from flows.publish_history_report import HistoryReportParams, publish_history_report
from tests.connector.factories import make_business, make_connection, make_item

pytestmark = pytest.mark.prefect


def _latest(key: str) -> Any:
    """The newest version of an artifact, read back from the Prefect server by key."""
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None, f"no artifact {key}"
    return artifact


def _table(key: str) -> list[dict[str, Any]]:
    data = _latest(key).data
    return json.loads(data) if isinstance(data, str) else data


@pytest.fixture
def history(db_session_for: Callable[[], Session]) -> dict[str, str]:
    """Two businesses with known outcomes: A 4 published (1-4 min latency), 1 rejected, 1 retried;
    B 1 published (10 min), 1 held (in review now, a new supplier)."""
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    with db_session_for() as s:
        a = make_business(s, slug=f"hist-a-{tag}")
        b = make_business(s, slug=f"hist-b-{tag}")
        make_connection(s, business=a, consent_expires_at=now + timedelta(days=5))
        make_connection(s, business=b, consent_expires_at=now + timedelta(days=200))
        run = uuid.uuid4()
        for minutes in (1, 2, 3, 4):
            item = make_item(
                s,
                business=a,
                status=ItemStatus.PUBLISHED,
                ready_at=now - timedelta(minutes=minutes),
            )
            record_attempt(
                s,
                run_id=run,
                item_id=item.id,
                business_id=a.id,
                step="expense",
                outcome="published",
                http_status=201,
                at=now,
                latency_ms=80,
            )
        bad = make_item(s, business=a)
        record_attempt(
            s,
            run_id=run,
            item_id=bad.id,
            business_id=a.id,
            step="expense",
            outcome="transient",
            http_status=503,
            error_code="SERVER_ERROR",
            at=now,
        )
        record_attempt(
            s,
            run_id=run,
            item_id=bad.id,
            business_id=a.id,
            step="expense",
            outcome="rejected",
            http_status=422,
            error_code="VALIDATION_ERROR",
            at=now,
        )
        record_publish_run(
            s,
            id=run,
            trigger="schedule",
            business_id=a.id,
            started_at=now - timedelta(seconds=40),
            finished_at=now,
            claimed=5,
            published=4,
            failed=1,
        )
        done = make_item(
            s, business=b, status=ItemStatus.PUBLISHED, ready_at=now - timedelta(minutes=10)
        )
        record_attempt(
            s,
            run_id=run,
            item_id=done.id,
            business_id=b.id,
            step="expense",
            outcome="published",
            at=now,
        )
        held = make_item(
            s,
            business=b,
            status=ItemStatus.REVIEW,
            contact_name="Kwik Fit",
            review_reasons=["new supplier 'Kwik Fit' is not in Nomi: confirm creating it"],
        )
        record_attempt(
            s,
            run_id=run,
            item_id=held.id,
            business_id=b.id,
            step="contact",
            outcome="held",
            error_code="NEW_SUPPLIER",
            at=now,
        )
    return {"a": a.slug, "b": b.slug}


@pytest.fixture
def connector_env(connector_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the flow's ConnectorSettings at the test database and a temporary home."""
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    monkeypatch.setenv("NOMI_CONNECTOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_report_for_all_businesses_publishes_artifacts_and_html_with_the_right_numbers(
    prefect_server: None, history: dict[str, str], connector_env: Path
) -> None:
    path = Path(publish_history_report(HistoryReportParams()))

    assert path.parent == connector_env / "reports"
    page = path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4  # volume, latency, businesses, calls
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert history["a"] in page
    assert "VALIDATION_ERROR" in page

    summary = _latest("history-summary").data
    assert "| Published | 5 |" in summary
    assert "| Failed attempts | 2 |" in summary
    assert "| Held in review now (items) | 1 |" in summary
    assert "| Failure rate | 28.6% |" in summary
    assert str(path) in summary
    assert f"]({path.as_uri()})" in summary
    assert summary.count("](data:image/png;base64,") == 4  # the charts, inline
    assert f"({path.as_uri()})" in _latest("history-report").data  # the link artifact

    by_business = {r["business"]: r for r in _table("history-by-business")}
    assert by_business[history["a"]]["published"] == 4
    assert by_business[history["a"]]["failed"] == 2
    assert by_business[history["a"]]["retried"] == 1
    assert by_business[history["b"]]["in_review"] == 1

    failures = _table("history-failures")
    assert {(r["source"], r["reason"]) for r in failures} == {
        ("nomi", "SERVER_ERROR"),
        ("nomi", "VALIDATION_ERROR"),
        ("review", "new supplier is not in Nomi"),
    }
    by_supplier = _table("history-failures-by-supplier")
    assert {(r["reason"], r["supplier"]) for r in by_supplier if r["source"] == "review"} == {
        ("new supplier is not in Nomi", "Kwik Fit")
    }

    calls = [r for r in _table("history-call-latency") if r["business"] == "all"]
    assert [(r["step"], r["calls"], r["p50_s"], r["p99_s"]) for r in calls] == [
        ("expense", 4, 0.08, 0.08)  # the four timed calls; calls without a duration are not
    ]

    latency = {r["business"]: r for r in _table("history-latency")}
    assert latency[history["a"]]["median_s"] == pytest.approx(150, abs=1)
    assert latency["all"]["published"] == 5
    assert latency["all"]["median_s"] == pytest.approx(180, abs=1)

    expiring = _table("history-expiring")
    assert [r["business"] for r in expiring] == [history["a"]]


def test_report_for_one_business_uses_its_own_keys_and_file(
    prefect_server: None, history: dict[str, str], connector_env: Path, tmp_path: Path
) -> None:
    slug = history["b"]
    out = tmp_path / "custom"
    path = Path(publish_history_report(HistoryReportParams(business=slug, output_dir=str(out))))

    assert path.parent == out
    assert path.name.endswith(f"-{slug}.html")
    by_business = _table(f"history-by-business-{slug}")
    assert [(r["business"], r["published"], r["in_review"]) for r in by_business] == [(slug, 1, 1)]
    assert "| Published | 1 |" in _latest(f"history-summary-{slug}").data
    assert f"({path.as_uri()})" in _latest(f"history-report-{slug}").data
    runs = _table(f"history-runs-{slug}")
    assert runs == []  # the run row belongs to business A


def test_report_for_an_unknown_business_fails_the_run(
    prefect_server: None, connector_env: Path
) -> None:
    state = publish_history_report(
        HistoryReportParams(business="no-such-business"), return_state=True
    )
    assert state.is_failed()
    with pytest.raises(LookupError, match="no-such-business"):
        state.result()
