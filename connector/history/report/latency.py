"""Latency tables: Ready to Published per business and bin, and each Nomi call per endpoint.

The latency rows themselves are read by ``connector.history.latency``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from connector.history.queries import STEP_ENDPOINTS
from connector.history.report.periods import Periods
from connector.history.report.units import rounded


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


def nearest_rank(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
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
    frame = nearest_rank(calls.astype({"business": str}), ["business", "step"])
    frame = frame.assign(first=frame["business"] != "all")
    frame = frame.sort_values(["first", "business", "step"], ignore_index=True)
    frame["endpoint"] = frame["step"].map(STEP_ENDPOINTS).fillna("")
    frame["calls"] = frame["calls"].astype("int64")
    return rounded(frame[CALL_COLUMNS])
