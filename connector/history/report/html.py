"""The history report as one self-contained HTML file: inline base64 PNG charts, no external assets.

The charts come from ``connector.history.report.charts``; every number is shown in its measure's one
unit (``connector.history.report.units.format_value``).
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import pandas as pd

from connector.history.documents import NOT_RECORDED, base_currency_totals
from connector.history.report.build import HistoryReport
from connector.history.report.charts import chart_uris
from connector.history.report.units import format_value

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:76rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}
.figure{margin:1rem 0}
.empty{color:#777;font-style:italic}
"""

#: HTML tables: heading -> report attribute, in the order shown.
SECTIONS = {
    "By business (items waiting now: in_review, ready)": "by_business",
    "By document type (totals in base currency)": "documents",
    "Corrections and voids per business": "corrections",
    "Failure reasons by kind": "failures",
    "Failure reasons by business and supplier": "failures_by_supplier",
    "Ready to Published latency": "latency",
    "Nomi call latency per endpoint": "call_latency",
    "Per-business trend": "business_trend",
    "Publish runs by trigger": "runs",
    "Items waiting longest": "waiting",
    "Reference-list sync freshness": "sync",
    "Connections expiring soon": "expiring",
}
MAX_ROWS = 500


def headline_facts(report: HistoryReport) -> list[tuple[str, str]]:
    """The headline as (label, value) pairs, each value in its measure's unit."""
    window, t = report.window, report.totals
    return [
        ("Period (UTC)", f"{window.since} to {window.until}"),
        ("Scope", window.business or "all businesses"),
        ("Published", f"{t['published']:.0f}"),
        ("Failed attempts", f"{t['failed']:.0f}"),
        ("Retried attempts", f"{t['retried']:.0f}"),
        ("Failure rate", format_value("failure_rate_pct", t["failure_rate_pct"])),
        ("Held in review now (items)", f"{t['held']:.0f}"),
        ("Ready, not yet published (items)", f"{t['ready']:.0f}"),
        ("Median Ready to Published", format_value("median_s", t["latency_median_s"])),
        ("p95 Ready to Published", format_value("p95_s", t["latency_p95_s"])),
        ("p95 Nomi call", format_value("p95_s", t["call_p95_s"])),
        ("Published total in base currency", base_total_text(report.documents)),
    ]


def base_total_text(documents: pd.DataFrame) -> str:
    """The published totals per base currency in words (``GBP 1,204.50; EUR 99.00``).

    Records without a total in base currency are counted, never added as 0.
    """
    parts = []
    for currency, total, without in base_currency_totals(documents):
        if currency == NOT_RECORDED:
            parts.append(f"{without} published without a recorded currency")
            continue
        text = f"{currency} {format_value('base_total', total)}"
        if without:
            text += f" ({without} without a base total)"
        parts.append(text)
    return "; ".join(parts) or "none"


def _cell(column: str, value: object) -> str:
    """One escaped table cell, numbers right-aligned."""
    text = html.escape(format_value(column, value))
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"


def _table(title: str, frame: pd.DataFrame) -> str:
    """An escaped HTML table with a heading (a note when empty)."""
    heading = f"<h2>{html.escape(title)}</h2>"
    if frame.empty:
        return heading + '<p class="empty">Nothing in this period.</p>'
    columns = [str(c) for c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = [
        "<tr>" + "".join(_cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row in frame.head(MAX_ROWS).astype(object).itertuples(index=False)
    ]
    more = ""
    if len(frame) > MAX_ROWS:
        more = f'<p class="empty">First {MAX_ROWS} of {len(frame)} rows (the export has all).</p>'
    return f"{heading}<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def _figure(title: str, uri: str | None) -> str:
    """An inline image, or a note when there was nothing to draw."""
    if uri is None:
        return f'<p class="empty">{html.escape(title)}: no data in this period.</p>'
    return f'<div class="figure"><img alt="{html.escape(title)}" src="{uri}"></div>'


def render_html(report: HistoryReport, charts: dict[str, str | None] | None = None) -> str:
    """The whole report as one HTML document (``charts``: from ``chart_uris``, drawn if None)."""
    scope = report.window.business or "all businesses"
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in headline_facts(report)
    )
    drawn = chart_uris(report) if charts is None else charts
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Nomi publish history: {html.escape(scope)}</title><style>{_STYLE}</style></head>",
        f"<body><h1>Nomi publish history: {html.escape(scope)}</h1>",
        f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC. Durations in seconds, rates in "
        "percent, waiting and ages in hours.</p>",
        f"<table>{rows}</table>",
        *(_figure(title, uri) for title, uri in drawn.items()),
        *(_table(title, getattr(report, name)) for title, name in SECTIONS.items()),
        "</body></html>",
    ]
    return "\n".join(parts)


def report_filename(since: date, until: date, business: str | None) -> str:
    """``history-report-<since>-<until>[-<business>].html``."""
    suffix = f"-{business}" if business else ""
    return f"history-report-{since.isoformat()}-{until.isoformat()}{suffix}.html"


def write_html(
    report: HistoryReport, directory: Path, charts: dict[str, str | None] | None = None
) -> Path:
    """Write the report under ``directory`` (created) and return the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    window = report.window
    path = directory / report_filename(window.since, window.until, window.business)
    path.write_text(render_html(report, charts), encoding="utf-8")
    return path
