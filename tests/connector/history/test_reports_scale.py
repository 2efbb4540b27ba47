"""The fast report paths agree with a naive pandas computation over generated history (SQLite).

The benchmark's generator writes a small year of attempts; the report for the whole year (table
scans, the covering items index) and for one month (the ``at`` index) must equal what pandas
computes from the raw rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from bench.reports import generate
from connector.history.attempts import load_latencies
from connector.history.queries import ReportWindow
from connector.history.report.build import build_report
from connector.store.db import make_engine
from tests.connector.conftest import statements_on

RECORD_STEPS = ("expense", "sales_invoice", "lookup")
FAILED = ("rejected", "transient", "unknown", "connection_lost")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.db"
    generate(path, 6_000)
    return path


@pytest.fixture
def engine_on(generated: Path) -> Engine:
    return make_engine(f"sqlite:///{generated}")


def _naive(path: Path, window: ReportWindow) -> pd.DataFrame:
    with sqlite3.connect(path) as db:
        frame = pd.read_sql(
            "SELECT a.*, b.slug AS business, i.ready_at FROM publish_attempts a "
            "JOIN businesses b ON b.id = a.business_id JOIN items i ON i.id = a.item_id",
            db,
        )
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["ready_at"] = pd.to_datetime(frame["ready_at"], utc=True)
    inside = (frame["at"] >= window.start) & (frame["at"] < window.end)
    frame = frame[inside].copy()
    frame["published"] = frame["outcome"].isin(["published", "recovered"]) & frame["step"].isin(
        RECORD_STEPS
    )
    frame["failed"] = frame["outcome"].isin(FAILED)
    frame["latency_s"] = (frame["at"] - frame["ready_at"]).dt.total_seconds()
    frame["day"] = frame["at"].dt.date
    return frame


@pytest.mark.parametrize(
    "window",
    [
        ReportWindow(date(2025, 1, 1), date(2025, 12, 31)),  # the whole history: table scans
        ReportWindow(date(2025, 6, 1), date(2025, 6, 30)),  # a month: the at index
    ],
    ids=["year", "month"],
)
def test_report_counts_and_latencies_equal_a_naive_pandas_computation(
    generated: Path, engine_on: Engine, window: ReportWindow
) -> None:
    naive = _naive(generated, window)
    report = build_report(engine_on, window, now=NOW)

    by_business = report.by_business.set_index("business")
    expected = naive.groupby("business")[["published", "failed"]].sum()
    assert by_business["published"].to_dict() == expected["published"].to_dict()
    assert by_business["failed"].to_dict() == expected["failed"].to_dict()
    assert by_business["attempts"].sum() == len(naive)
    assert report.by_day["attempts"].tolist() == naive.groupby("day").size().tolist()

    published = naive[naive["published"]]
    overall = report.latency.iloc[0]
    assert overall["business"] == "all"
    assert overall["published"] == len(published)
    assert overall["median_s"] == pytest.approx(published["latency_s"].median(), abs=1e-3)
    assert overall["p95_s"] == pytest.approx(published["latency_s"].quantile(0.95), abs=1e-3)
    per_business = report.latency.iloc[1:].set_index("business")
    medians = published.groupby("business")["latency_s"].median()
    assert per_business.index.tolist() == sorted(medians.index)
    assert per_business["median_s"].to_numpy() == pytest.approx(medians.to_numpy(), abs=1e-3)
    daily = report.latency_daily
    assert daily["day"].tolist() == sorted(published["day"].unique())
    assert daily["published"].tolist() == published.groupby("day").size().tolist()

    codes = naive[naive["failed"]].groupby("error_code").size()
    nomi = report.failures[report.failures["source"] == "nomi"].set_index("reason")["count"]
    assert nomi.to_dict() == codes.to_dict()


def test_latency_loader_returns_compact_columns(engine_on: Engine) -> None:
    with engine_on.connect() as conn:
        frame = load_latencies(conn, ReportWindow(date(2025, 1, 1), date(2025, 12, 31)))

    assert isinstance(frame["business"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["day"].dtype, pd.CategoricalDtype)
    assert frame["latency_s"].dtype == "float64"
    assert list(frame["day"].cat.categories) == sorted(frame["day"].cat.categories)
    assert (frame["latency_s"] > 0).all()


def test_year_report_scans_attempts_and_joins_through_the_covering_items_index(
    engine_on: Engine,
) -> None:
    with engine_on.connect() as conn:
        with statements_on(conn) as seen:
            load_latencies(conn, ReportWindow(date(2025, 1, 1), date(2025, 12, 31)))
        statement, params = next((s, p) for s, p in seen if "JOIN items" in s)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    plan = " | ".join(row[3] for row in rows)
    assert "SCAN publish_attempts" in plan
    assert "USING INDEX ix_items_id_ready_at" in plan
    assert "ix_publish_attempts" not in plan
