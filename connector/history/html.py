"""The history report as one self-contained HTML file: inline base64 PNG charts, no external assets.

Charts are drawn with matplotlib's object API (``Figure`` on the Agg canvas, no pyplot state), so
rendering is safe in worker threads and needs no display.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from connector.history.report import HistoryReport

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}
.figure{margin:1rem 0}
.empty{color:#777;font-style:italic}
"""


def _png(figure: Figure) -> str:
    """The figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def volume_chart(by_day: pd.DataFrame) -> str | None:
    """Published/failed bars per day with the failure rate line; None without data."""
    if by_day.empty:
        return None
    days = pd.to_datetime(by_day["day"])
    figure = Figure(figsize=(9, 3.5))
    axes = figure.add_subplot()
    axes.bar(days, by_day["published"], label="published", color="#2e7d32")
    axes.bar(days, by_day["failed"], bottom=by_day["published"], label="failed", color="#c62828")
    axes.set_ylabel("attempts")
    rate = axes.twinx()
    rate.plot(days, by_day["failure_rate"] * 100, color="#333", marker="o", label="failure rate")
    rate.set_ylabel("failure rate (%)")
    rate.set_ylim(0, 100)
    axes.legend(loc="upper left")
    axes.set_title("Publish volume and failure rate per day (UTC)")
    figure.autofmt_xdate()
    return _png(figure)


def latency_chart(latency_daily: pd.DataFrame) -> str | None:
    """Median and p95 Ready-to-Published latency per day in minutes; None without data."""
    if latency_daily.empty:
        return None
    days = pd.to_datetime(latency_daily["day"])
    figure = Figure(figsize=(9, 3.5))
    axes = figure.add_subplot()
    axes.plot(days, latency_daily["median_s"] / 60, marker="o", label="median")
    axes.plot(days, latency_daily["p95_s"] / 60, marker="o", label="p95")
    axes.set_ylabel("minutes")
    axes.set_title("Ready to Published latency per day (UTC)")
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    return _png(figure)


def _table(title: str, frame: pd.DataFrame) -> str:
    """An escaped HTML table with a heading (a note when empty)."""
    heading = f"<h2>{html.escape(title)}</h2>"
    if frame.empty:
        return heading + '<p class="empty">Nothing in this period.</p>'
    return heading + frame.to_html(index=False, escape=True, na_rep="", border=0)


def _figure(title: str, uri: str | None) -> str:
    """An inline image, or a note when there was nothing to draw."""
    if uri is None:
        return f'<p class="empty">{html.escape(title)}: no data in this period.</p>'
    return f'<div class="figure"><img alt="{html.escape(title)}" src="{uri}"></div>'


def render_html(report: HistoryReport) -> str:
    """The whole report as one HTML document."""
    window = report.window
    scope = window.business or "all businesses"
    t = report.totals
    facts = [
        ("Period (UTC)", f"{window.since} to {window.until}"),
        ("Scope", scope),
        ("Published", f"{t['published']:.0f}"),
        ("Failed attempts", f"{t['failed']:.0f}"),
        ("Held in review", f"{t['held']:.0f}"),
        ("Retried attempts", f"{t['retried']:.0f}"),
        ("Failure rate", f"{t['failure_rate']:.1%}"),
        ("Median Ready to Published", _duration(t["latency_median_s"])),
        ("p95 Ready to Published", _duration(t["latency_p95_s"])),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Nomi publish history: {html.escape(scope)}</title><style>{_STYLE}</style></head>",
        f"<body><h1>Nomi publish history: {html.escape(scope)}</h1>",
        f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p><table>{rows}</table>",
        _figure("Publish volume and failure rate", volume_chart(report.by_day)),
        _figure("Ready to Published latency", latency_chart(report.latency_daily)),
        _table("By business", report.by_business),
        _table("Failure reasons", report.failures),
        _table("Ready to Published latency (seconds)", report.latency),
        _table("Publish runs by trigger", report.runs),
        _table("Items waiting longest", report.waiting),
        _table("Reference-list sync freshness", report.sync),
        _table("Connections expiring soon", report.expiring),
        "</body></html>",
    ]
    return "\n".join(parts)


def _duration(seconds: float) -> str:
    """Seconds as a short human duration ("n/a" when unknown)."""
    if pd.isna(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def report_filename(since: date, until: date, business: str | None) -> str:
    """``history-report-<since>-<until>[-<business>].html``."""
    suffix = f"-{business}" if business else ""
    return f"history-report-{since.isoformat()}-{until.isoformat()}{suffix}.html"


def write_html(report: HistoryReport, directory: Path) -> Path:
    """Write the report under ``directory`` (created) and return the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    window = report.window
    path = directory / report_filename(window.since, window.until, window.business)
    path.write_text(render_html(report), encoding="utf-8")
    return path
