"""One report: ``HistoryReport`` (every table of a window), its headline and ``build_report``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from connector.history import attempts, corrections, documents, summaries
from connector.history.queries import ReportWindow
from connector.history.report.failures import failure_reasons, failures_by_supplier
from connector.history.report.latency import (
    call_latency,
    latency_by_day,
    latency_stats,
    latency_trend,
    nearest_rank,
)
from connector.history.report.operations import (
    expiring_connections,
    run_totals,
    sync_freshness,
    waiting_items,
    with_durations,
)
from connector.history.report.outcomes import OUTCOME_COLUMNS, busiest, by_business, outcome_totals
from connector.history.report.periods import Periods, business_trend, periods_for, trend

#: Businesses drawn by name on the trend chart; the rest are summed as ``other``.
TREND_BUSINESSES = 6  # the trend table and chart name these; the rest is ``other``
#: Businesses (the most attempts first) whose call latency is reported one by one.
CALL_BUSINESSES = 20


@dataclass
class HistoryReport:
    """Every table of one report, plus the window, the time it was made and its time bins."""

    window: ReportWindow
    generated_at: datetime
    by_business: pd.DataFrame
    by_day: pd.DataFrame
    failures: pd.DataFrame
    latency: pd.DataFrame
    latency_daily: pd.DataFrame
    runs: pd.DataFrame
    recent_runs: pd.DataFrame
    waiting: pd.DataFrame
    sync: pd.DataFrame
    expiring: pd.DataFrame
    totals: dict[str, float] = field(default_factory=dict)
    periods: Periods | None = None
    trend: pd.DataFrame = field(default_factory=pd.DataFrame)
    business_trend: pd.DataFrame = field(default_factory=pd.DataFrame)
    latency_trend: pd.DataFrame = field(default_factory=pd.DataFrame)
    failures_by_supplier: pd.DataFrame = field(default_factory=pd.DataFrame)
    call_latency: pd.DataFrame = field(default_factory=pd.DataFrame)
    documents: pd.DataFrame = field(default_factory=pd.DataFrame)
    corrections: pd.DataFrame = field(default_factory=pd.DataFrame)


def headline(
    by_day: pd.DataFrame,
    latency: pd.DataFrame,
    item_counts: pd.DataFrame | None = None,
    call_p95_s: float = float("nan"),
) -> dict[str, float]:
    """The summary numbers.

    ``published``, ``failed``, ``retried``, ``attempts`` (the window's attempts),
    ``failure_rate_pct``, ``held`` (items in review **now**), ``ready`` (items Ready now),
    ``latency_median_s`` and ``latency_p95_s`` (Ready to Published) and ``call_p95_s`` (p95 of
    every Nomi call).
    """
    sums = {c: int(by_day[c].sum()) if not by_day.empty else 0 for c in OUTCOME_COLUMNS}
    done = sums["published"] + sums["failed"]
    overall = latency[latency["business"] == "all"]
    counts = item_counts if item_counts is not None else pd.DataFrame()
    return {
        **sums,
        "failure_rate_pct": round(sums["failed"] / done * 100, 1) if done else 0.0,
        "held": int(counts["in_review"].sum()) if not counts.empty else 0,
        "ready": int(counts["ready"].sum()) if not counts.empty else 0,
        "latency_median_s": float(overall["median_s"].iloc[0]) if len(overall) else float("nan"),
        "latency_p95_s": float(overall["p95_s"].iloc[0]) if len(overall) else float("nan"),
        "call_p95_s": round(call_p95_s, 3),
    }


def build_report(
    engine: Engine,
    window: ReportWindow,
    *,
    now: datetime,
    expiring_within: timedelta = timedelta(days=30),
    stale_after: timedelta = timedelta(hours=24),
    waiting_limit: int = 20,
) -> HistoryReport:
    """Load the window's history and compute every report table.

    Args:
        engine: The connector database.
        window: Days and optional business slug.
        now: The report time (waiting, freshness and expiry are measured from it).
        expiring_within: Consent expiring within this is reported.
        stale_after: A list not synced for this long is stale.
        waiting_limit: How many longest-waiting items to list.

    Returns:
        The report.

    Raises:
        connector.errors.UnknownBusinessError: The window's business does not exist.
    """
    with engine.connect() as conn:
        # per business, document type and base currency: the business totals are summed from it
        per_business = attempts.load_outcome_totals(conn, window, "business_document")
        per_day = attempts.load_outcome_totals(conn, window, "day")
        trend_of = busiest(per_business, TREND_BUSINESSES)
        per_business_day = attempts.load_outcome_totals(conn, window, "business_day", trend_of)
        failures = attempts.load_failure_counts(conn, window)
        latencies = attempts.load_latencies(conn, window)
        every_call = attempts.load_call_counts(conn, window)
        top = busiest(per_business, CALL_BUSINESSES)
        per_business_calls = attempts.load_call_counts(conn, window, top)
        run_days = summaries.load_run_totals(conn, window)
        recent = summaries.load_recent_runs(conn, window)
        reviews = summaries.load_review_reasons(conn, window)
        item_counts = summaries.load_item_counts(conn, window)
        waiting = summaries.load_waiting_items(conn, window, limit=waiting_limit)
        sync = summaries.load_sync_state(conn, window)
        connections = summaries.load_connections(conn, window)
        corrected = corrections.load_corrections(conn, window)
    periods = periods_for(list(per_day["day"]) if not per_day.empty else [])
    by_day = outcome_totals(per_day, "day")
    latency = latency_stats(latencies)
    call_frame = call_latency(pd.concat([every_call, per_business_calls], ignore_index=True))
    overall = nearest_rank(every_call, ["business"]) if not every_call.empty else None
    call_p95 = float(overall["p95_s"].iloc[0]) if overall is not None else float("nan")
    per_document = documents.by_document(per_business)
    return HistoryReport(
        window=window,
        generated_at=now,
        by_business=documents.with_base_totals(
            by_business(per_business, item_counts), per_document
        ),
        by_day=by_day,
        failures=failure_reasons(failures, reviews),
        latency=latency,
        latency_daily=latency_by_day(latencies),
        runs=run_totals(run_days),
        recent_runs=with_durations(recent),
        waiting=waiting_items(waiting, now),
        sync=sync_freshness(sync, now, stale_after),
        expiring=expiring_connections(connections, now, expiring_within),
        totals=headline(by_day, latency, item_counts, call_p95),
        periods=periods,
        trend=trend(by_day, periods),
        business_trend=business_trend(per_business_day, periods, per_day),
        latency_trend=latency_trend(latencies, periods),
        failures_by_supplier=failures_by_supplier(failures, reviews),
        call_latency=call_frame,
        documents=per_document,
        corrections=corrected,
    )
