"""The report's time axis (``Periods``: by day or by week) and the outcome trends over it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from connector.history.report.outcomes import OUTCOME_COLUMNS, outcome_totals

#: Bins of a week once the data spans more days than this; days up to it.
DAILY_UP_TO_DAYS = 45
#: The time axis of a chart shows at least this many days (one day of data is one bar of seven).
MIN_AXIS_DAYS = 7


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
