"""Tasks of publish-history-report: build the report, write its HTML file, publish its artifacts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from connector.history.keys import artifact_key
from connector.history.queries import ReportWindow
from connector.history.report.artifacts import (
    LINK_KEY,
    SUMMARY_KEY,
    TABLES,
    report_url,
    summary_markdown,
)
from connector.history.report.artifacts import table_rows as rows_of
from connector.history.report.build import HistoryReport, build_report
from connector.history.report.charts import chart_uris
from connector.history.report.html import write_html
from tasks.runtime import engine_for, retry_on

#: Retry only when the database could not be reached or was busy (never a bad request).
retry_on_database_outage = retry_on(OperationalError)


@task(
    name="build-history-report",
    task_run_name="build-history-report-{window.since}-{window.until}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_on_database_outage,
)
def build_history_report(database_url: str, window: ReportWindow, now: datetime) -> HistoryReport:
    """Load the window's history from the connector database and compute every report table."""
    report = build_report(engine_for(database_url), window, now=now)
    t = report.totals
    get_run_logger().info(
        "history %s..%s (%s): published %d, failed %d, retried %d; items in review now %d",
        window.since,
        window.until,
        window.business or "all businesses",
        t["published"],
        t["failed"],
        t["retried"],
        t["held"],
    )
    return report


@task(name="draw-history-charts", cache_policy=NO_CACHE)
def draw_history_charts(report: HistoryReport) -> dict[str, str | None]:
    """Draw the report's charts once, as PNG data URIs (for the HTML file and the summary)."""
    return chart_uris(report)


@task(name="write-history-html", cache_policy=NO_CACHE)
def write_history_html(
    report: HistoryReport, directory: str, charts: dict[str, str | None] | None = None
) -> str:
    """Write the self-contained HTML report and return its path."""
    path = write_html(report, Path(directory), charts)
    get_run_logger().info("history report written to %s", path)
    return str(path)


@task(name="publish-history-artifacts", cache_policy=NO_CACHE)
def publish_history_artifacts(
    report: HistoryReport,
    html_path: str | None,
    charts: dict[str, str | None] | None = None,
) -> list[str]:
    """Publish the summary (markdown, charts inline), a link to the HTML file and the report
    tables as keyed artifacts; return the keys."""
    business = report.window.business
    scope = business or "all businesses"
    period = f"{report.window.since} to {report.window.until}"
    keys = [artifact_key(SUMMARY_KEY, business)]
    create_markdown_artifact(
        summary_markdown(report, html_path, charts),
        key=keys[0],
        description=f"Publish history summary with charts, {scope}, {period}",
    )
    if html_path:
        keys.append(artifact_key(LINK_KEY, business))
        create_link_artifact(
            report_url(html_path),
            link_text=Path(html_path).name,
            key=keys[-1],
            description=f"The full HTML history report ({scope}, {period}): {html_path}",
        )
    for stem, (attribute, description) in TABLES.items():
        key = artifact_key(stem, business)
        create_table_artifact(
            rows_of(getattr(report, attribute)),
            key=key,
            description=f"{description} ({scope}, {period})",
        )
        keys.append(key)
    get_run_logger().info("published %d history artifacts for %s", len(keys), scope)
    return keys
