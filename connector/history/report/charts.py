"""The history report's charts as matplotlib figures that suit one day of data and a year alike.

Figures use matplotlib's object API on the Agg canvas (no pyplot state), so drawing is safe in
worker threads and needs no display. The time axis comes from the data (``report.Periods``): bars
per day up to 45 days of data and per week beyond, at least seven days shown, ticks on whole days
or Mondays, never hours. Legends sit outside the plotting area. Every duration is in seconds.
"""

from __future__ import annotations

import base64
import io
import math
from datetime import date

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from connector.history.report.build import HistoryReport
from connector.history.report.periods import Periods

GREEN, RED, INK, BLUE, ORANGE = "#2e7d32", "#c62828", "#333333", "#1565c0", "#ef6c00"
SIZE = (9.0, 3.8)
DPI = 96
MAX_TICKS = 10


def _figure(title: str) -> tuple[Figure, Axes]:
    """A figure with one axes, constrained layout (room for outside legends) and a title."""
    figure = Figure(figsize=SIZE, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=11)
    return figure, figure.add_subplot()


def _day_number(day: date) -> float:
    """A day as a matplotlib date number (midnight UTC)."""
    return float(mdates.date2num(np.datetime64(day, "D")))


def _centres(periods: Periods, starts: pd.Series) -> np.ndarray:
    """The middle of each bin starting on ``starts``."""
    return np.array([_day_number(d) + periods.bin_days / 2 for d in starts], dtype=float)


def _time_axis(axes: Axes, periods: Periods) -> None:
    """The x axis over the bins' days: limits, whole-day (or Monday) ticks, a labelled year."""
    start, end = periods.start, periods.end
    axes.set_xlim(_day_number(start), _day_number(end))
    days = (end - start).days
    if periods.bin_days == 1:
        locator: mdates.DateLocator = mdates.DayLocator(
            interval=max(1, math.ceil(days / MAX_TICKS))
        )
    else:
        weeks = days // 7
        locator = mdates.WeekdayLocator(
            byweekday=mdates.MO, interval=max(1, math.ceil(weeks / MAX_TICKS))
        )
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    last = periods.end.toordinal() - 1
    last_year = date.fromordinal(last).year
    years = f"{start:%Y}" if start.year == last_year else f"{start:%Y}-{last_year}"
    per = "day" if periods.bin_days == 1 else "week from Monday"
    cut = periods.bin_days > 1 and (
        periods.partial(start) or periods.partial(periods.of(periods.last))
    )
    note = (
        f"; first and last week cover {periods.first:%d %b} to {periods.last:%d %b} only"
        if cut
        else ""
    )
    axes.set_xlabel(f"{per} (UTC), {years}{note}")


def _legend_below(figure: Figure, axes: list[Axes], columns: int = 4) -> None:
    """One legend for the axes' lines and bars, below the plotting area."""
    handles, labels = [], []
    for ax in axes:
        h, ls = ax.get_legend_handles_labels()
        handles += h
        labels += ls
    figure.legend(handles, labels, loc="outside lower center", ncols=columns, frameon=False)


def volume_figure(report: HistoryReport) -> Figure | None:
    """Published and failed attempts per bin (stacked bars) with the failure rate in percent."""
    frame, periods = report.trend, report.periods
    if periods is None or frame.empty:
        return None
    figure, axes = _figure(f"Publish volume and failure rate per {periods.label}")
    x = _centres(periods, frame["period"])
    width = 0.8 * periods.bin_days
    alpha = [0.45 if periods.partial(p) else 1.0 for p in frame["period"]]
    published = axes.bar(x, frame["published"], width, label="published", color=GREEN)
    failed = axes.bar(
        x, frame["failed"], width, bottom=frame["published"], label="failed", color=RED
    )
    for bars in (published, failed):  # bins the data covers only in part are drawn lighter
        for bar, value in zip(bars, alpha, strict=True):
            bar.set_alpha(value)
    axes.set_ylabel("attempts")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    rate = axes.twinx()
    rate.plot(x, frame["failure_rate_pct"], color=INK, marker="o", label="failure rate (%)")
    rate.set_ylabel("failure rate (%)")
    rate.set_ylim(0, 100)
    _time_axis(axes, periods)
    _legend_below(figure, [axes, rate], columns=3)
    return figure


def latency_figure(report: HistoryReport) -> Figure | None:
    """Median and p95 Ready-to-Published latency per bin, in seconds."""
    frame, periods = report.latency_trend, report.periods
    if periods is None or frame.empty:
        return None
    figure, axes = _figure(f"Ready to Published latency per {periods.label} (seconds)")
    x = _centres(periods, frame["period"])
    axes.plot(x, frame["median_s"], marker="o", color=BLUE, label="median")
    axes.plot(x, frame["p95_s"], marker="o", color=ORANGE, label="p95")
    axes.set_ylabel("seconds")
    axes.set_ylim(bottom=0, top=max(1.0, float(frame["p95_s"].max()) * 1.15))
    _time_axis(axes, periods)
    _legend_below(figure, [axes], columns=2)
    return figure


def business_figure(report: HistoryReport, named: int = 6) -> Figure | None:
    """Items published per bin for the businesses that published most (the rest as ``other``)."""
    frame, periods = report.business_trend, report.periods
    if periods is None or frame.empty:
        return None
    volume = (
        frame.groupby("business")["published"].sum().sort_values(ascending=False, kind="stable")
    )
    top = [b for b in volume.index if b != "other"][:named]
    names = frame["business"].where(frame["business"].isin(top), "other")
    per = (
        frame.assign(business=names)
        .groupby(["business", "period"], as_index=False)["published"]
        .sum()
    )
    figure, axes = _figure(f"Published per business per {periods.label}")
    for business in [*top, *(["other"] if (names == "other").any() else [])]:
        rows = per[per["business"] == business].sort_values("period")
        axes.plot(_centres(periods, rows["period"]), rows["published"], marker="o", label=business)
    axes.set_ylabel("items published")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _time_axis(axes, periods)
    _legend_below(figure, [axes], columns=min(4, len(top) + 1))
    return figure


def call_figure(report: HistoryReport) -> Figure | None:
    """p50, p95 and p99 duration of Nomi calls per endpoint (all businesses), in seconds."""
    frame = report.call_latency
    if frame.empty:
        return None
    rows = frame[frame["business"] == "all"].reset_index(drop=True)
    figure, axes = _figure("Nomi call latency per endpoint (seconds)")
    y = np.arange(len(rows))
    height = 0.26
    for offset, (column, colour) in enumerate(
        [("p50_s", GREEN), ("p95_s", ORANGE), ("p99_s", RED)]
    ):
        axes.barh(y + (offset - 1) * height, rows[column], height, color=colour, label=column[:3])
    labels = [
        f"{endpoint} ({calls} call{'s' if calls != 1 else ''})"
        for endpoint, calls in zip(rows["endpoint"], rows["calls"], strict=True)
    ]
    axes.set_yticks(y, labels)
    axes.invert_yaxis()
    axes.set_xlabel("seconds")
    axes.set_xlim(left=0)
    _legend_below(figure, [axes], columns=3)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (96 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def data_uri(figure: Figure | None) -> str | None:
    """The figure as a base64 PNG data URI (None for no figure)."""
    if figure is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png_bytes(figure)).decode("ascii")


#: Every chart of the report: title -> figure builder, in the order they are shown.
CHARTS = {
    "Publish volume and failure rate": volume_figure,
    "Ready to Published latency": latency_figure,
    "Published per business": business_figure,
    "Nomi call latency per endpoint": call_figure,
}


def chart_uris(report: HistoryReport) -> dict[str, str | None]:
    """Each chart's title and data URI (None when there was nothing to draw)."""
    return {title: data_uri(build(report)) for title, build in CHARTS.items()}
