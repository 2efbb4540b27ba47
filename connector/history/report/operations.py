"""What ops watch in the report: publish runs, waiting items, sync freshness, expiring consent."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from connector.history.report.units import rounded


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
    grouped["mean_duration_s"] = grouped.pop("duration_sum") / grouped["runs"]
    return rounded(grouped.sort_values("trigger", ignore_index=True)[columns])


def with_durations(runs: pd.DataFrame) -> pd.DataFrame:
    """Recent runs with ``duration_s`` (finished minus started; empty while unfinished)."""
    duration = (runs["finished_at"] - runs["started_at"]).dt.total_seconds()
    return rounded(runs.assign(duration_s=duration.astype("float64")))


def waiting_items(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The waiting items with ``waiting_hours`` (now minus ``waiting_since``), longest first."""
    hours = (pd.Timestamp(now) - items["waiting_since"]).dt.total_seconds().clip(lower=0) / 3600
    out = rounded(items.assign(waiting_hours=hours.astype("float64")))
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
    out = rounded(sync_state.assign(age_hours=age.astype("float64"), stale=stale.astype(bool)))
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
