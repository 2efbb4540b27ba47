"""The report read as an analyst reads it, on the demo's day and on ninety days of history.

The rows are written through the store (``history_data``); the numbers are checked against what
was written and against the export, and every chart is drawn to PNG and its geometry checked:
the time axis spans the data (never hours for one day, never years for a quarter), the legend is
clear of the plotting area, the image has its size.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.history.export import export_attempts
from connector.history.queries import ReportWindow
from connector.history.report import charts
from connector.history.report.artifacts import summary_markdown, table_rows
from connector.history.report.build import HistoryReport, build_report
from connector.history.report.html import headline_facts, render_html
from connector.store.db import make_engine, migrate
from tests.connector.history.history_data import Written, demo_like, ninety_days

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DEMO_WINDOW = ReportWindow(NOW.date() - timedelta(days=29), NOW.date())
QUARTER = ReportWindow(NOW.date() - timedelta(days=89), NOW.date())
SECONDS = re.compile(r"^(n/a|\d[\d,]*\.\d{3} s)$")
PERCENT = re.compile(r"^\d+\.\d%$")


def in_review(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM items WHERE status = 'review'")).scalar_one()
        )


def exported(engine: Engine, window: ReportWindow, path: Path) -> list[dict[str, str]]:
    export_attempts(engine, window, path, fmt="csv")
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_the_demo_day_reads_right(engine: Engine, tmp_path: Path) -> None:
    with Session(engine, expire_on_commit=False) as s:
        written = demo_like(s, NOW)
    report = build_report(engine, DEMO_WINDOW, now=NOW)
    t = report.totals

    assert t["held"] == written.in_review == in_review(engine) == 5  # items, not held attempts
    assert report.by_business.set_index("business").loc["bright-smile", "in_review"] == 5
    assert (t["published"], t["failed"]) == (written.published, written.failed)
    reasons = report.failures.set_index("reason")
    assert reasons.loc["no category", "count"] == 4  # four suppliers, one reason
    assert reasons.loc["no category", "suppliers"] == 4
    assert reasons.loc["new supplier is not in Nomi", "count"] == 1
    by_supplier = report.failures_by_supplier
    assert sorted(by_supplier[by_supplier["reason"] == "no category"]["supplier"]) == [
        "Costco",
        "O'Brien's Cafe",
        "Royal Mail",
        "Wickes",
    ]
    assert not any("'" in r for r in report.failures["reason"])  # no names in the reasons

    facts = dict(headline_facts(report))
    for label, value in facts.items():
        if "Ready to Published" in label or "call" in label:
            assert SECONDS.match(value), (label, value)
    assert facts["Failure rate"] == "10.0%"
    html = render_html(report, charts={})
    markdown = summary_markdown(report, str(tmp_path / "r.html"))
    for value in facts.values():  # the headline says the same in the file and the artifact
        assert value in html
        assert value in markdown
    assert facts["Median Ready to Published"] in html
    for row in table_rows(report.latency) + table_rows(report.call_latency):
        for column, value in row.items():
            if column.endswith("_s"):
                assert value == round(value, 3)
    assert "0.1 " not in html  # the rate is never a bare fraction

    rows = exported(engine, DEMO_WINDOW, tmp_path / "attempts.csv")
    assert {r["flow_run_id"] for r in rows} == {str(i) for i in written.flow_run_ids}
    assert all(r["http_status"] for r in rows)
    assert {r["http_status"] for r in rows if r["outcome"] == "published"} == {"200", "201"}


def test_ninety_days_read_right(engine: Engine, tmp_path: Path) -> None:
    with Session(engine, expire_on_commit=False) as s:
        written = ninety_days(s, NOW.date())
    report = build_report(engine, QUARTER, now=NOW)
    t = report.totals

    assert report.periods is not None
    assert report.periods.bin_days == 7
    assert (report.periods.first, report.periods.last) == (min(written.days), max(written.days))
    assert t["held"] == written.in_review == in_review(engine)
    assert t["published"] == written.published == report.trend["published"].sum()
    expected_rate = round(100 * written.failed / (written.published + written.failed), 1)
    assert t["failure_rate_pct"] == expected_rate
    per_business = report.business_trend.groupby("business")["published"].sum().to_dict()
    assert per_business == written.published_per_business
    assert set(report.business_trend["period"]) == set(report.trend["period"])
    assert all(p.weekday() == 0 for p in report.trend["period"])

    rows = exported(engine, QUARTER, tmp_path / "attempts.csv")
    assert len(rows) == t["attempts"]
    assert all(r["flow_run_id"] and r["http_status"] for r in rows)
    durations = np.array([int(r["latency_ms"]) for r in rows])
    overall = report.call_latency.set_index("business").loc["all"]
    assert overall["calls"] == len(durations)
    for p in (50, 95, 99):
        nearest_rank = np.percentile(durations, p, method="inverted_cdf") / 1000
        assert overall[f"p{p}_s"] == pytest.approx(nearest_rank, abs=1e-9)
    assert t["call_p95_s"] == overall["p95_s"]  # one endpoint: all calls are its calls
    for business in written.businesses:
        mine = np.array([int(r["latency_ms"]) for r in rows if r["business"] == business])
        row = report.call_latency[report.call_latency["business"] == business].iloc[0]
        assert row["p99_s"] == np.percentile(mine, 99, method="inverted_cdf") / 1000

    reasons = report.failures
    assert set(reasons[reasons["source"] == "review"]["reason"]) == {"no category"}
    assert reasons[reasons["reason"] == "no category"]["count"].iloc[0] == written.in_review


# ---- the charts, drawn ---------------------------------------------------------------------------


def sqlite_report(tmp_path: Path, name: str, window: ReportWindow) -> tuple[HistoryReport, Written]:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    migrate(engine)
    with Session(engine, expire_on_commit=False) as s:
        written = demo_like(s, NOW) if name == "demo" else ninety_days(s, NOW.date())
    try:
        return build_report(engine, window, now=NOW), written
    finally:
        engine.dispose()


@pytest.fixture(params=["demo", "ninety"])
def drawn(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, HistoryReport, Written]:
    window = DEMO_WINDOW if request.param == "demo" else QUARTER
    report, written = sqlite_report(tmp_path, request.param, window)
    return request.param, report, written


def day(number: float) -> date:
    return mdates.num2date(number).date()


def check_clear_legend(figure: Figure) -> None:
    """The legend exists and overlaps no plotting area."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    assert len(figure.legends) == 1
    legend = figure.legends[0].get_window_extent(renderer)
    for axes in figure.axes:
        area = axes.get_window_extent(renderer)
        assert not legend.overlaps(area), (legend, area)
        assert legend.y1 <= area.y0 or legend.x0 >= area.x1  # below or beside, not on top
    page = figure.bbox
    assert page.x0 <= legend.x0
    assert legend.x1 <= page.x1
    assert page.y0 <= legend.y0


def check_png(figure: Figure, path: Path) -> None:
    path.write_bytes(charts.png_bytes(figure))
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width == round(charts.SIZE[0] * charts.DPI)
    assert abs(height - charts.SIZE[1] * charts.DPI) <= 1


def test_time_charts_span_the_data_in_whole_days_with_the_legend_clear(
    drawn: tuple[str, HistoryReport, Written], tmp_path: Path
) -> None:
    name, report, written = drawn
    periods = report.periods
    assert periods is not None
    first, last = min(written.days), max(written.days)
    for build in (charts.volume_figure, charts.latency_figure, charts.business_figure):
        figure = build(report)
        assert figure is not None, build.__name__
        check_clear_legend(figure)
        check_png(figure, tmp_path / f"{name}-{build.__name__}.png")
        axes = figure.axes[0]
        low, high = axes.get_xlim()
        assert day(low) <= first  # every day with data is shown
        assert day(high - 1e-9) >= last
        shown = high - low
        assert shown >= 7  # one day of data is one bar in a week, not one bar on an hourly axis
        assert shown <= max(7, (last - first).days + 1 + 2 * periods.bin_days)  # no years around
        ticks = [t for t in axes.get_xticks() if low <= t <= high]
        assert len(ticks) >= 3
        assert all(float(t).is_integer() for t in ticks)  # midnight ticks: days, never hours
        if periods.bin_days == 7:
            assert all(day(t).weekday() == 0 for t in ticks)
        for line in axes.get_lines():
            xs = np.asarray(line.get_xdata(), dtype=float)
            assert ((xs >= low) & (xs <= high)).all()
        if build is charts.volume_figure:
            widths = [b.get_width() for b in axes.patches]  # type: ignore[attr-defined]
            assert widths
            assert all(math.isclose(w, 0.8 * periods.bin_days) for w in widths)


def test_the_call_latency_chart_is_in_seconds_with_the_legend_clear(
    drawn: tuple[str, HistoryReport, Written], tmp_path: Path
) -> None:
    name, report, _ = drawn
    figure = charts.call_figure(report)
    assert figure is not None
    check_clear_legend(figure)
    check_png(figure, tmp_path / f"{name}-calls.png")
    axes = figure.axes[0]
    assert axes.get_xlabel() == "seconds"
    calls = report.call_latency
    longest = calls[calls["business"] == "all"]["p99_s"].max()
    low, high = axes.get_xlim()
    assert low == 0
    assert longest <= high <= longest * 1.2


def test_the_summary_artifact_carries_the_charts_inline_and_links_the_file(
    drawn: tuple[str, HistoryReport, Written], tmp_path: Path
) -> None:
    _, report, _ = drawn
    uris = charts.chart_uris(report)
    assert all(uri and uri.startswith("data:image/png;base64,") for uri in uris.values())
    path = tmp_path / "report.html"
    markdown = summary_markdown(report, str(path), uris)
    assert markdown.count("](data:image/png;base64,") == len(uris)
    assert f"]({path.as_uri()})" in markdown
    html = render_html(report, uris)
    assert html.count('src="data:image/png;base64,') == len(uris)
