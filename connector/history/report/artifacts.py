"""The history report shaped for Prefect artifacts (no Prefect here): keys, markdown, table rows.

Keys are stable per report and business (``history-summary``, ``history-failures-<slug>`` ...) so
the Artifacts page keeps one versioned history per report. The summary is markdown with the charts
inline as PNG data URIs (the Prefect UI renders them) and a link to the HTML file.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from connector.history.report.build import HistoryReport
from connector.history.report.html import headline_facts
from connector.history.report.units import decimals_of, format_value

#: Table artifacts: key stem -> (report attribute, description).
TABLES: dict[str, tuple[str, str]] = {
    "history-by-business": (
        "by_business",
        "Published, failed, retried attempts and failure rate (%) per business, with the items "
        "in review and Ready now",
    ),
    "history-documents": (
        "documents",
        "Published records per business and document type, with their total in the "
        "organisation's base currency (empty: not recorded, e.g. attempts before issue 20)",
    ),
    "history-corrections": (
        "corrections",
        "Corrections and archives of published items asked per business, the records Nomi "
        "voided and the voids it refused (locked period, invoice with payments)",
    ),
    "history-failures": (
        "failures",
        "Failure reasons by kind (Nomi error codes of failed attempts, review reasons of the items "
        "in review now), ranked, with how many suppliers",
    ),
    "history-failures-by-supplier": (
        "failures_by_supplier",
        "Failure reasons per business and supplier",
    ),
    "history-latency": ("latency", "Ready to Published latency in seconds (median, p95, max)"),
    "history-call-latency": (
        "call_latency",
        "Nomi call latency in seconds per endpoint (p50, p95, p99, max), all businesses first",
    ),
    "history-trend": ("business_trend", "Per-business trend: attempts per day or week"),
    "history-runs": ("runs", "Publish runs per trigger: counts and durations in seconds"),
    "history-waiting": ("waiting", "Items waiting longest in ready or review (hours)"),
    "history-sync": ("sync", "Reference-list sync freshness per business and list (hours)"),
    "history-expiring": ("expiring", "Connections whose Nomi consent expires soon"),
}
SUMMARY_KEY = "history-summary"
LINK_KEY = "history-report"
MAX_TABLE_ROWS = 200


def _cell(value: Any, column: str = "") -> Any:
    """A JSON-friendly table cell (unit columns rounded to their unit's decimals)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item(), column)
    decimals = decimals_of(column)
    if isinstance(value, float) and decimals is not None:
        return round(value, decimals)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def table_rows(frame: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> list[dict[str, Any]]:
    """The first ``limit`` rows as JSON-friendly dicts."""
    head = frame.head(limit).astype(object)
    return [{str(k): _cell(v, str(k)) for k, v in row.items()} for row in head.to_dict("records")]


def _md_escape(text: str) -> str:
    """Cell text safe inside a markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(frame: pd.DataFrame, limit: int) -> str:
    """A small markdown table, numbers in their units (``_none_`` when empty)."""
    if frame.empty:
        return "_none_"
    columns = [str(c) for c in frame.columns]
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = [
        "| "
        + " | ".join(_md_escape(format_value(c, v)) for c, v in zip(columns, row, strict=True))
        + " |"
        for row in frame.head(limit).astype(object).itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def report_url(html_path: str) -> str:
    """The HTML file as a ``file://`` URL (for the link artifact)."""
    return Path(html_path).resolve().as_uri()


def summary_markdown(
    report: HistoryReport,
    html_path: str | None = None,
    charts: dict[str, str | None] | None = None,
) -> str:
    """The markdown summary artifact: the headline, the charts inline and the top rows of the key
    tables, with the HTML report's path and URL."""
    window = report.window
    scope = window.business or "all businesses"
    facts = headline_facts(report)[2:]
    lines = [
        f"# Nomi publish history: {scope}",
        "",
        f"Period {window.since} to {window.until} (UTC), generated "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC. Durations in seconds, rates in percent.",
    ]
    if html_path:
        lines += ["", f"**Full report:** [{Path(html_path).name}]({report_url(html_path)})"]
        lines += ["", f"Path on the worker: `{html_path}`"]
    lines += [
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in facts),
        f"| Connections expiring soon | {len(report.expiring)} |",
        f"| Stale reference lists | {int(report.sync['stale'].sum()) if len(report.sync) else 0} |",
    ]
    for title, uri in (charts or {}).items():
        if uri is not None:
            lines += ["", f"![{title}]({uri})"]
    waiting = report.waiting
    waiting_columns = ["business", "external_id", "status", "waiting_hours"]
    lines += [
        "",
        "## Top failure reasons",
        "",
        md_table(report.failures.drop(columns=["rank"], errors="ignore"), 10),
        "",
        "## Nomi call latency (all businesses)",
        "",
        md_table(
            report.call_latency[report.call_latency["business"] == "all"].drop(columns=["business"])
            if not report.call_latency.empty
            else report.call_latency,
            10,
        ),
        "",
        "## Items waiting longest",
        "",
        md_table(waiting[waiting_columns] if not waiting.empty else waiting, 10),
    ]
    return "\n".join(lines) + "\n"
