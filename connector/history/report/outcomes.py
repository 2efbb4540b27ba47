"""Outcome counts (published, failed, retried, attempts) per key, with the failure rate."""

from __future__ import annotations

import pandas as pd

from connector.history.report.units import rounded

OUTCOME_COLUMNS = ["published", "failed", "retried", "attempts"]


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


def busiest(per_business_day: pd.DataFrame, limit: int) -> list[str]:
    """The ``limit`` businesses with the most attempts (ties by slug)."""
    if per_business_day.empty:
        return []
    attempts_of = per_business_day.groupby("business", observed=True)["attempts"].sum()
    ranked = attempts_of.reset_index().sort_values(
        ["attempts", "business"], ascending=[False, True]
    )
    return [str(b) for b in ranked["business"].head(limit)]
