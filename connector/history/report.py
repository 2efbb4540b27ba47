"""Run-history report: pure pandas transforms over the frames of the history loaders.

What counts as published, failed, held, retried and latency is defined in docs/history.md; the
counting happens in SQL (``connector.history.attempts``) so a year of attempts never reaches pandas
row by row. Each transform takes DataFrames and returns a new one; ``build_report`` wires loaders
and transforms together for one window.

One unit per measure, wherever it is shown (tables, headline, charts, artifacts): durations in
seconds with three decimals (columns ``*_s``), rates in percent with one decimal (``*_pct``),
waiting and ages in hours with one decimal (``*_hours``); ``rounded`` and ``format_value`` apply
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from connector.history import attempts, summaries
from connector.history.queries import STEP_ENDPOINTS, ReportWindow

OUTCOME_COLUMNS = ["published", "failed", "retried", "attempts"]
#: Decimals of each unit, by column suffix.
UNIT_DECIMALS = {"_s": 3, "_pct": 1, "_hours": 1}
#: Bins of a week once the data spans more days than this; days up to it.
DAILY_UP_TO_DAYS = 45
#: The time axis of a chart shows at least this many days (one day of data is one bar of seven).
MIN_AXIS_DAYS = 7
#: Businesses drawn by name on the trend chart; the rest are summed as ``other``.
TREND_BUSINESSES = 6  # the trend table and chart name these; the rest is ``other``
#: Businesses (the most attempts first) whose call latency is reported one by one.
CALL_BUSINESSES = 20


def decimals_of(column: str) -> int | None:
    """The decimals a column's unit is shown with (None: not a measured quantity)."""
    for suffix, decimals in UNIT_DECIMALS.items():
        if column.endswith(suffix):
            return decimals
    return None


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every unit column (``*_s``, ``*_pct``, ``*_hours``) rounded to its unit."""
    out = frame.copy()
    for column in out.columns:
        decimals = decimals_of(str(column))
        if decimals is not None:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
            out[column] = out[column].round(decimals)
    return out


def format_value(column: str, value: object) -> str:
    """A cell as shown: unit columns with their fixed decimals and unit, others as they are."""
    missing = value is None or value is pd.NA or value is pd.NaT
    if missing or (isinstance(value, float) and math.isnan(value)):
        return "n/a" if decimals_of(column) is not None else ""
    decimals = decimals_of(column)
    if decimals is None:
        return str(value)
    text = f"{float(value):,.{decimals}f}"  # type: ignore[arg-type]
    if column.endswith("_pct"):
        return text + "%"
    return text + (" s" if column.endswith("_s") else " h")


def _pct(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole`` in percent (0 where ``whole`` is 0)."""
    return (part / whole.where(whole > 0) * 100).fillna(0.0).astype("float64")


def _with_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``failure_rate_pct`` = failed / (published + failed) in percent, 0 when both are 0."""
    rate = _pct(frame["failed"], frame["published"] + frame["failed"])
    return rounded(frame.assign(failure_rate_pct=rate))


def outcome_totals(totals: pd.DataFrame, key: str | list[str]) -> pd.DataFrame:
    """Outcome counts per ``key`` (``business``, ``day``, ``period``...) sorted by it, with the
    failure rate.

    Args:
        totals: ``<key>, published, failed, retried, attempts`` (rows may repeat a key: they are
            summed).
        key: The column(s) to total by.

    Returns:
        ``<key>, published, failed, retried, attempts, failure_rate_pct``.
    """
    keys = [key] if isinstance(key, str) else key
    if totals.empty:
        return pd.DataFrame(columns=[*keys, *OUTCOME_COLUMNS, "failure_rate_pct"])
    summed = totals.groupby(keys, as_index=False, observed=True)[OUTCOME_COLUMNS].sum()
    return _with_rate(summed.sort_values(keys, ignore_index=True))


def by_business(totals: pd.DataFrame, item_counts: pd.DataFrame) -> pd.DataFrame:
    """Outcome counts per business with the items waiting there now.

    Args:
        totals: ``business, ..., published, failed, retried, attempts``.
        item_counts: ``business, in_review, ready`` (items now in review / Ready).

    Returns:
        ``business, published, failed, retried, attempts, failure_rate_pct, in_review, ready``:
        every business with attempts in the window or items waiting now.
    """
    counted = outcome_totals(totals, "business")
    waiting = item_counts[(item_counts["in_review"] > 0) | (item_counts["ready"] > 0)]
    out = counted.merge(waiting, on="business", how="outer")
    for column in [*OUTCOME_COLUMNS, "in_review", "ready"]:
        out[column] = out[column].fillna(0).astype("int64")
    out["failure_rate_pct"] = out["failure_rate_pct"].fillna(0.0).astype("float64")
    return out.sort_values("business", ignore_index=True)


# ---- time axis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """How a report's trends are binned and drawn: by day or by week, over which days.

    ``first``/``last``: the first and last day with data; ``start``..``end`` (end excluded): the
    days the time axis shows, whole bins, at least ``MIN_AXIS_DAYS``.
    """

    first: date
    last: date
    bin_days: int

    @property
    def label(self) -> str:
        """``day`` or ``week`` (weeks start on Monday)."""
        return "day" if self.bin_days == 1 else "week"

    def of(self, day: date) -> date:
        """The first day of the bin ``day`` falls in."""
        return day if self.bin_days == 1 else day - timedelta(days=day.weekday())

    def partial(self, period: date) -> bool:
        """Whether the bin starting on ``period`` reaches past the data's first or last day."""
        return period < self.first or period + timedelta(days=self.bin_days - 1) > self.last

    @property
    def start(self) -> date:
        """The first day the axis shows."""
        return self.of(min(self.first, self.last - timedelta(days=MIN_AXIS_DAYS - 1)))

    @property
    def end(self) -> date:
        """The day after the last day the axis shows."""
        return self.of(self.last) + timedelta(days=self.bin_days)


def periods_for(days: Iterable[date]) -> Periods | None:
    """The bins for data on ``days``: days up to ``DAILY_UP_TO_DAYS`` of span, weeks beyond."""
    present = sorted(set(days))
    if not present:
        return None
    first, last = present[0], present[-1]
    span = (last - first).days + 1
    return Periods(first=first, last=last, bin_days=1 if span <= DAILY_UP_TO_DAYS else 7)


def _period_column(day: pd.Series, periods: Periods) -> pd.Series:
    """The bin start of each day (plain ``date`` objects)."""
    return day.astype(object).map(periods.of)


def trend(per_day: pd.DataFrame, periods: Periods | None) -> pd.DataFrame:
    """Outcome counts per bin: ``period, published, failed, retried, attempts,
    failure_rate_pct``."""
    if periods is None or per_day.empty:
        return pd.DataFrame(columns=["period", *OUTCOME_COLUMNS, "failure_rate_pct"])
    frame = per_day.assign(period=_period_column(per_day["day"], periods))
    return outcome_totals(frame, "period")


def business_trend(
    per_business_day: pd.DataFrame, periods: Periods | None, per_day: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Outcome counts per business and bin (the per-business trends).

    Args:
        per_business_day: ``business, day, ...counts`` of the businesses drawn by name.
        periods: The bins.
        per_day: ``day, ...counts`` of every business: when given, what the named businesses do
            not account for is added as business ``other``.

    Returns:
        ``business, period, published, failed, retried, attempts, failure_rate_pct``.
    """
    columns = ["business", "period", *OUTCOME_COLUMNS, "failure_rate_pct"]
    if periods is None or per_business_day.empty:
        return pd.DataFrame(columns=columns)
    frame = per_business_day.assign(business=per_business_day["business"].astype(str))
    if per_day is not None and not per_day.empty:
        named = frame.groupby("day")[OUTCOME_COLUMNS].sum()
        rest = per_day.set_index("day")[OUTCOME_COLUMNS].sub(named, fill_value=0)
        rest = rest[(rest > 0).any(axis=1)].reset_index().assign(business="other")
        frame = pd.concat([frame, rest], ignore_index=True)
    frame = frame.assign(period=_period_column(frame["day"], periods))
    out = outcome_totals(frame, ["business", "period"])
    for column in OUTCOME_COLUMNS:
        out[column] = out[column].astype("int64")
    return out[columns]


# ---- failure reasons ---------------------------------------------------------------------------

#: A quoted name in a review reason: from a quote to the quote that ends it (followed by a space,
#: a colon, a bracket, a comma, a full stop or the end), so "O'Brien's" stays one name.
_QUOTED = re.compile(r"'.*?'(?=[\s:),.]|$)")
_BRACKETED = re.compile(r"\s*\([^)]*\)")


def reason_kind(reason: str) -> str:
    """The kind of a review reason: its text before the first colon, without the names in it.

    ``"no category: set one on the item or add a supplier rule for 'Acme'"`` is ``no category``;
    ``"new supplier 'Acme' is not in Nomi: confirm ..."`` is ``new supplier is not in Nomi``;
    ``"category 'Travel' (from the supplier rule for 'Acme') is archived in Nomi: ..."`` is
    ``category is archived in Nomi``. The names are shown in their own column instead.
    """
    head = _QUOTED.sub("", reason).split(":", 1)[0]  # names first: one may hold a colon
    kind = _BRACKETED.sub("", head)
    return " ".join(kind.split()) or " ".join(reason.split())


FAILURE_COLUMNS = ["rank", "source", "reason", "count", "businesses", "suppliers", "top_suppliers"]
BY_SUPPLIER_COLUMNS = ["source", "reason", "business", "supplier", "count"]


def _reason_rows(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """``source, reason, business, supplier, count``: one row per failed-attempt group and per
    item in review and reason kind."""
    failed = pd.DataFrame(
        {
            "source": "nomi",
            "reason": failures["error_code"]
            .astype(object)
            .fillna(failures["outcome"].astype(str) + " (no code)")
            .astype(str),
            "business": failures["business"].astype(object),
            "supplier": failures["supplier"].astype(object).fillna("").astype(str),
            "count": failures["attempts"].astype("int64"),
        }
    )
    reviews = pd.DataFrame(
        {
            "source": "review",
            "reason": review_reasons["reason"].astype(str).map(reason_kind),
            "business": review_reasons["business"].astype(object),
            "supplier": review_reasons["supplier"].astype(object).fillna("").astype(str),
            "count": 1,
        }
    )
    frames = [f for f in (failed, reviews) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=BY_SUPPLIER_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    return rows.astype({"count": "int64"})


def failures_by_supplier(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """Failure reasons per business and supplier: ``source, reason, business, supplier, count``,
    highest count first (``supplier`` empty when the item names none)."""
    rows = _reason_rows(failures, review_reasons)
    if rows.empty:
        return pd.DataFrame(columns=BY_SUPPLIER_COLUMNS)
    keys = ["source", "reason", "business", "supplier"]
    grouped = rows.groupby(keys, as_index=False)["count"].sum()
    grouped = grouped.sort_values(
        ["count", *keys], ascending=[False, True, True, True, True], ignore_index=True
    )
    return grouped[BY_SUPPLIER_COLUMNS].astype({"count": "int64"})


def failure_reasons(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """Failure reasons by kind, ranked by how often they occurred.

    Args:
        failures: ``business, outcome, error_code, supplier, attempts`` for failed attempts.
        review_reasons: ``business, supplier, reason`` for the items now in review.

    Returns:
        ``rank, source, reason, count, businesses, suppliers, top_suppliers``: ``source`` is
        ``nomi`` (the error code of failed attempts, ``<outcome> (no code)`` when there was
        none; ``count`` = attempts) or ``review`` (the kind of a review reason of the items now
        in review, see ``reason_kind``; ``count`` = items); ``suppliers`` = how many distinct
        suppliers or customers, ``top_suppliers`` the three most frequent as ``name (count)``.
        Highest count first.
    """
    rows = _reason_rows(failures, review_reasons)
    if rows.empty:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    per_supplier = failures_by_supplier(failures, review_reasons)
    named = per_supplier[per_supplier["supplier"] != ""]
    named = named.groupby(["source", "reason", "supplier"], as_index=False)["count"].sum()
    named = named.sort_values(["count", "supplier"], ascending=[False, True])
    top = pd.DataFrame(
        [
            (
                source,
                reason,
                group["supplier"].nunique(),
                ", ".join(
                    f"{name} ({count})"
                    for name, count in zip(group["supplier"][:3], group["count"][:3], strict=True)
                ),
            )
            for (source, reason), group in named.groupby(["source", "reason"], sort=False)
        ],
        columns=["source", "reason", "suppliers", "top_suppliers"],
    )
    ranked = rows.groupby(["source", "reason"], as_index=False).agg(
        count=("count", "sum"), businesses=("business", "nunique")
    )
    ranked = ranked.merge(top, on=["source", "reason"], how="left")
    ranked["suppliers"] = ranked["suppliers"].fillna(0).astype("int64")
    ranked["top_suppliers"] = ranked["top_suppliers"].fillna("")
    ranked = ranked.sort_values(["count", "source", "reason"], ascending=[False, True, True])
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)[FAILURE_COLUMNS].astype(
        {"count": "int64", "businesses": "int64"}
    )


# ---- latencies ---------------------------------------------------------------------------------


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
    frame = pd.DataFrame(
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
    return rounded(frame)


def latency_trend(latencies: pd.DataFrame, periods: Periods | None) -> pd.DataFrame:
    """Median and p95 latency per bin, all businesses: ``period, published, median_s, p95_s``."""
    columns = ["period", "published", "median_s", "p95_s"]
    if latencies.empty or periods is None:
        return pd.DataFrame(columns=columns)
    days = latencies["day"]
    categories = list(days.cat.categories) if hasattr(days, "cat") else sorted(set(days))
    bins = {day: periods.of(day) for day in categories}
    period = days.astype(object).map(bins)
    grouped = latencies["latency_s"].groupby(period.to_numpy(), sort=True)
    frame = pd.DataFrame(
        {
            "published": grouped.size(),
            "median_s": grouped.median(),
            "p95_s": grouped.quantile(0.95),
        }
    )
    frame.index.name = "period"
    return rounded(frame.reset_index())[columns]


def latency_by_day(latencies: pd.DataFrame) -> pd.DataFrame:
    """Median and p95 latency per UTC day, all businesses: ``day, published, median_s, p95_s``."""
    if latencies.empty:
        return pd.DataFrame(columns=["day", "published", "median_s", "p95_s"])
    daily = latency_trend(latencies, Periods(date.min, date.max, bin_days=1))
    return daily.rename(columns={"period": "day"})


CALL_COLUMNS = ["business", "step", "endpoint", "calls", "p50_s", "p95_s", "p99_s", "max_s"]


def _nearest_rank(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Nearest-rank p50/p95/p99 and max of ``latency_ms`` weighted by ``calls``, per ``keys``."""
    frame = (
        counts.groupby([*keys, "latency_ms"], as_index=False, observed=True)["calls"]
        .sum()
        .sort_values([*keys, "latency_ms"], ignore_index=True)
    )
    grouped = frame.groupby(keys, sort=False, observed=True)
    cumulative = grouped["calls"].cumsum()
    total = grouped["calls"].transform("sum")
    out = grouped.agg(calls=("calls", "sum"), max_ms=("latency_ms", "max"))
    for share in (50, 95, 99):
        reached = frame[cumulative >= np.ceil(total * share / 100)]
        first = reached.groupby(keys, sort=False, observed=True)["latency_ms"].first()
        out[f"p{share}_ms"] = first
    out = out.reset_index()
    for name in ("p50", "p95", "p99", "max"):
        out[f"{name}_s"] = out.pop(f"{name}_ms").astype("float64") / 1000
    return out


def call_latency(calls: pd.DataFrame) -> pd.DataFrame:
    """Per-call latency of Nomi calls per endpoint and business (``all`` first).

    Args:
        calls: ``business, step, latency_ms, calls`` (see ``attempts.load_call_counts``; the
            rows of every call together have ``business`` = ``all``).

    Returns:
        ``business, step, endpoint, calls, p50_s, p95_s, p99_s, max_s``: nearest-rank percentiles
        (the smallest duration at least that share of the calls took no longer than).
    """
    if calls.empty:
        return pd.DataFrame(columns=CALL_COLUMNS)
    frame = _nearest_rank(calls.astype({"business": str}), ["business", "step"])
    frame = frame.assign(first=frame["business"] != "all")
    frame = frame.sort_values(["first", "business", "step"], ignore_index=True)
    frame["endpoint"] = frame["step"].map(STEP_ENDPOINTS).fillna("")
    frame["calls"] = frame["calls"].astype("int64")
    return rounded(frame[CALL_COLUMNS])


def busiest(per_business_day: pd.DataFrame, limit: int) -> list[str]:
    """The ``limit`` businesses with the most attempts (ties by slug)."""
    if per_business_day.empty:
        return []
    attempts_of = per_business_day.groupby("business", observed=True)["attempts"].sum()
    ranked = attempts_of.reset_index().sort_values(
        ["attempts", "business"], ascending=[False, True]
    )
    return [str(b) for b in ranked["business"].head(limit)]


# ---- runs, waiting, sync, connections ------------------------------------------------------------


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


# ---- the report --------------------------------------------------------------------------------


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
        per_business = attempts.load_outcome_totals(conn, window, "business")
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
    periods = periods_for(list(per_day["day"]) if not per_day.empty else [])
    by_day = outcome_totals(per_day, "day")
    latency = latency_stats(latencies)
    call_frame = call_latency(pd.concat([every_call, per_business_calls], ignore_index=True))
    overall = _nearest_rank(every_call, ["business"]) if not every_call.empty else None
    call_p95 = float(overall["p95_s"].iloc[0]) if overall is not None else float("nan")
    return HistoryReport(
        window=window,
        generated_at=now,
        by_business=by_business(per_business, item_counts),
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
    )
