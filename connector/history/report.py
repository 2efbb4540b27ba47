"""Run-history report: pure pandas transforms over the frames of the history loaders.

What counts as published, failed, held, retried and latency is defined in docs/history.md; the
counting happens in SQL (``connector.history.attempts``) so a year of attempts never reaches pandas
row by row. Each transform takes DataFrames and returns a new one; ``build_report`` wires loaders
and transforms together for one window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from connector.history import attempts, summaries
from connector.history.queries import FAILED_OUTCOMES, ReportWindow

OUTCOME_COLUMNS = ["published", "failed", "held", "retried", "attempts"]


def _with_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``failure_rate`` = failed / (published + failed), 0 when nothing happened."""
    done = frame["published"] + frame["failed"]
    rate = (frame["failed"] / done.where(done > 0)).fillna(0.0).round(4)
    return frame.assign(failure_rate=rate.astype("float64"))


def outcome_totals(totals: pd.DataFrame, key: str) -> pd.DataFrame:
    """Outcome counts per ``key`` (``business`` or ``day``) sorted by it, with the failure rate.

    Args:
        totals: ``<key>, published, failed, held, retried, attempts`` (rows may repeat a key:
            they are summed).
        key: The column to total by.

    Returns:
        ``<key>, published, failed, held, retried, attempts, failure_rate``.
    """
    if totals.empty:
        return pd.DataFrame(columns=[key, *OUTCOME_COLUMNS, "failure_rate"])
    summed = totals.groupby(key, as_index=False)[OUTCOME_COLUMNS].sum()
    return _with_rate(summed.sort_values(key, ignore_index=True))


def failure_reasons(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """Failure reasons ranked by how often they occurred.

    Args:
        failures: ``business, outcome, error_code, attempts`` for failed and held attempts.
        review_reasons: ``business, reason`` for the items now in review.

    Returns:
        ``rank, source, reason, count, businesses``: ``source`` is ``nomi`` (error codes of failed
        attempts, ``(none)`` when Nomi gave no code), ``held`` (codes of held attempts) or
        ``review`` (review reasons of items now in review); highest count first.
    """
    failed = failures[failures["outcome"].isin(FAILED_OUTCOMES)].assign(source="nomi")
    held = failures[failures["outcome"] == "held"].assign(source="held")
    tried = pd.concat([failed, held], ignore_index=True)
    tried = tried.assign(
        reason=tried["error_code"].fillna("(none)").astype("string"), count=tried["attempts"]
    )
    reviews = review_reasons.assign(source="review", count=1)
    rows = pd.concat([tried[["source", "reason", "business", "count"]], reviews], ignore_index=True)
    columns = ["rank", "source", "reason", "count", "businesses"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    ranked = rows.groupby(["source", "reason"], as_index=False).agg(
        count=("count", "sum"), businesses=("business", "nunique")
    )
    ranked = ranked.sort_values(["count", "source", "reason"], ascending=[False, True, True])
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)[columns].astype({"count": "int64", "businesses": "int64"})


def latency_stats(latencies: pd.DataFrame) -> pd.DataFrame:
    """Ready-to-Published latency: all businesses first (``business`` = ``all``), then each.

    Args:
        latencies: ``business, day, latency_s`` (``business`` plain or categorical).

    Returns:
        ``business, published, median_s, p95_s, max_s`` (p95: linear interpolation).
    """
    columns = ["business", "published", "median_s", "p95_s", "max_s"]
    if latencies.empty:
        return pd.DataFrame(columns=columns)
    values = latencies["latency_s"]
    grouped = values.groupby(latencies["business"], sort=True, observed=True)
    per_business = pd.DataFrame(
        {
            "published": grouped.size(),
            "median_s": grouped.median(),
            "p95_s": grouped.quantile(0.95),
            "max_s": grouped.max(),
        }
    )
    overall = [len(values), values.median(), values.quantile(0.95), values.max()]
    return pd.DataFrame(
        {
            "business": ["all", *map(str, per_business.index)],
            "published": [int(overall[0]), *per_business["published"].astype(int)],
            **{
                name: [float(total), *per_business[name].astype(float)]
                for name, total in zip(columns[2:], overall[1:], strict=True)
            },
        },
        columns=columns,
    )


def latency_by_day(latencies: pd.DataFrame) -> pd.DataFrame:
    """Median and p95 latency per day over all businesses: ``day, published, median_s, p95_s``."""
    if latencies.empty:
        return pd.DataFrame(columns=["day", "published", "median_s", "p95_s"])
    grouped = latencies["latency_s"].groupby(latencies["day"], sort=True, observed=True)
    daily = pd.DataFrame(
        {
            "published": grouped.size(),
            "median_s": grouped.median(),
            "p95_s": grouped.quantile(0.95),
        }
    ).reset_index()
    daily["day"] = daily["day"].astype(object)  # plain dates, also from a categorical
    return daily


def run_totals(run_days: pd.DataFrame) -> pd.DataFrame:
    """Publish runs per trigger: count, item counts, mean and longest duration.

    Args:
        run_days: ``trigger, day, runs, claimed, published, failed, held, skipped,
            duration_s_sum, duration_s_max`` (see ``load_run_totals``).

    Returns:
        ``trigger, runs, claimed, published, failed, held, skipped, mean_duration_s,
        max_duration_s``.
    """
    counts = ["runs", "claimed", "published", "failed", "held", "skipped"]
    columns = ["trigger", *counts, "mean_duration_s", "max_duration_s"]
    if run_days.empty:
        return pd.DataFrame(columns=columns)
    grouped = run_days.groupby("trigger", as_index=False).agg(
        **{c: (c, "sum") for c in counts},
        duration_sum=("duration_s_sum", "sum"),
        max_duration_s=("duration_s_max", "max"),
    )
    grouped["mean_duration_s"] = (grouped.pop("duration_sum") / grouped["runs"]).round(3)
    return grouped.sort_values("trigger", ignore_index=True)[columns]


def with_durations(runs: pd.DataFrame) -> pd.DataFrame:
    """Recent runs with ``duration_s`` (finished minus started; empty while unfinished)."""
    duration = (runs["finished_at"] - runs["started_at"]).dt.total_seconds()
    return runs.assign(duration_s=duration.astype("float64"))


def waiting_items(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The waiting items with ``waiting_hours`` (now minus ``waiting_since``), longest first."""
    hours = (pd.Timestamp(now) - items["waiting_since"]).dt.total_seconds().clip(lower=0) / 3600
    out = items.assign(waiting_hours=hours.round(2).astype("float64"))
    return out.sort_values("waiting_hours", ascending=False, ignore_index=True)


def sync_freshness(sync_state: pd.DataFrame, now: datetime, stale_after: timedelta) -> pd.DataFrame:
    """Sync freshness per business and list.

    Args:
        sync_state: ``business, list_name, last_synced_at, runs, failed_runs``.
        now: The report time.
        stale_after: Age beyond which (or no sync at all) a list is ``stale``.

    Returns:
        The input plus ``age_hours`` and ``stale``, stalest first.
    """
    age = (pd.Timestamp(now) - sync_state["last_synced_at"]).dt.total_seconds() / 3600
    stale = age.isna() | (age > stale_after.total_seconds() / 3600)
    out = sync_state.assign(age_hours=age.round(2).astype("float64"), stale=stale.astype(bool))
    return out.sort_values(
        ["age_hours", "business", "list_name"], ascending=[False, True, True], na_position="first"
    ).reset_index(drop=True)


def expiring_connections(
    connections: pd.DataFrame, now: datetime, within: timedelta
) -> pd.DataFrame:
    """Connections whose Nomi consent expires within ``within`` (or already has), soonest first.

    Returns:
        ``business, organisation, status, consent_expires_at, days_left`` (whole days, floor).
    """
    expires = connections["consent_expires_at"]
    soon = connections[expires.notna() & (expires <= pd.Timestamp(now + within))]
    days = (soon["consent_expires_at"] - pd.Timestamp(now)).dt.total_seconds() // 86400
    out = soon.assign(days_left=days.astype("int64"))
    columns = ["business", "organisation", "status", "consent_expires_at", "days_left"]
    return out.sort_values("consent_expires_at", ignore_index=True)[columns]


@dataclass
class HistoryReport:
    """Every table of one report, plus the window and the time it was made."""

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


def headline(by_day: pd.DataFrame, latency: pd.DataFrame) -> dict[str, float]:
    """The summary numbers: published, failed, held, retried, failure rate, median/p95 latency."""
    sums = {c: int(by_day[c].sum()) if not by_day.empty else 0 for c in OUTCOME_COLUMNS}
    done = sums["published"] + sums["failed"]
    overall = latency[latency["business"] == "all"]
    return {
        **sums,
        "failure_rate": round(sums["failed"] / done, 4) if done else 0.0,
        "latency_median_s": float(overall["median_s"].iloc[0]) if len(overall) else float("nan"),
        "latency_p95_s": float(overall["p95_s"].iloc[0]) if len(overall) else float("nan"),
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
        per_business = attempts.load_outcome_totals(conn, window, "business")
        per_day = attempts.load_outcome_totals(conn, window, "day")
        failures = attempts.load_failure_counts(conn, window)
        latencies = attempts.load_latencies(conn, window)
        run_days = summaries.load_run_totals(conn, window)
        recent = summaries.load_recent_runs(conn, window)
        reviews = summaries.load_review_reasons(conn, window)
        waiting = summaries.load_waiting_items(conn, window, limit=waiting_limit)
        sync = summaries.load_sync_state(conn, window)
        connections = summaries.load_connections(conn, window)
    by_day = outcome_totals(per_day, "day")
    latency = latency_stats(latencies)
    return HistoryReport(
        window=window,
        generated_at=now,
        by_business=outcome_totals(per_business, "business"),
        by_day=by_day,
        failures=failure_reasons(failures, reviews),
        latency=latency,
        latency_daily=latency_by_day(latencies),
        runs=run_totals(run_days),
        recent_runs=with_durations(recent),
        waiting=waiting_items(waiting, now),
        sync=sync_freshness(sync, now, stale_after),
        expiring=expiring_connections(connections, now, expiring_within),
        totals=headline(by_day, latency),
    )
