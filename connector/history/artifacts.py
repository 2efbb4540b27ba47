"""The history report shaped for Prefect artifacts (no Prefect here): keys, markdown, table rows.

Keys are stable per report and business (``history-summary``, ``history-failures-<slug>`` ...) so
the Artifacts page keeps one versioned history per report.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from connector.history.report import HistoryReport

#: Table artifacts: key stem -> (report attribute, description).
TABLES: dict[str, tuple[str, str]] = {
    "history-by-business": ("by_business", "Published, failed, held, retried per business"),
    "history-failures": ("failures", "Failure reasons ranked (Nomi codes, held, review reasons)"),
    "history-latency": ("latency", "Ready to Published latency in seconds (median, p95, max)"),
    "history-runs": ("runs", "Publish runs per trigger: counts and durations"),
    "history-waiting": ("waiting", "Items waiting longest in ready or review"),
    "history-sync": ("sync", "Reference-list sync freshness per business and list"),
    "history-expiring": ("expiring", "Connections whose Nomi consent expires soon"),
}
SUMMARY_KEY = "history-summary"
MAX_TABLE_ROWS = 200


def _cell(value: Any) -> Any:
    """A JSON-friendly table cell."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def table_rows(frame: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> list[dict[str, Any]]:
    """The first ``limit`` rows as JSON-friendly dicts."""
    head = frame.head(limit).astype(object)
    return [{str(k): _cell(v) for k, v in row.items()} for row in head.to_dict("records")]


def _md_table(frame: pd.DataFrame, limit: int) -> str:
    """A small markdown table (or a dash when empty)."""
    if frame.empty:
        return "_none_"
    rows = table_rows(frame, limit)
    header = "| " + " | ".join(rows[0]) + " |"
    rule = "|" + "---|" * len(rows[0])
    body = ["| " + " | ".join("" if v is None else str(v) for v in r.values()) + " |" for r in rows]
    return "\n".join([header, rule, *body])


def summary_markdown(report: HistoryReport, html_path: str | None = None) -> str:
    """The markdown summary artifact: headline numbers and the top rows of the key tables."""
    window, t = report.window, report.totals
    scope = window.business or "all businesses"
    median = t["latency_median_s"]
    p95 = t["latency_p95_s"]
    lines = [
        f"# Nomi publish history: {scope}",
        "",
        f"Period {window.since} to {window.until} (UTC), generated "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| published | {t['published']:.0f} |",
        f"| failed attempts | {t['failed']:.0f} |",
        f"| held in review | {t['held']:.0f} |",
        f"| retried attempts | {t['retried']:.0f} |",
        f"| failure rate | {t['failure_rate']:.1%} |",
        f"| median Ready to Published (s) | {'n/a' if math.isnan(median) else f'{median:.1f}'} |",
        f"| p95 Ready to Published (s) | {'n/a' if math.isnan(p95) else f'{p95:.1f}'} |",
        f"| connections expiring soon | {len(report.expiring)} |",
        f"| stale reference lists | {int(report.sync['stale'].sum()) if len(report.sync) else 0} |",
        "",
        "## Top failure reasons",
        "",
        _md_table(report.failures, 10),
        "",
        "## Items waiting longest",
        "",
        _md_table(report.waiting[["business", "external_id", "status", "waiting_hours"]], 10),
    ]
    if html_path:
        lines += ["", f"Full report with charts: `{html_path}`"]
    return "\n".join(lines) + "\n"
