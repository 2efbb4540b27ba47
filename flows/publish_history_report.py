"""The publish-history-report flow: the run-history report as artifacts and an HTML file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field, field_validator

from connector.history.queries import ReportWindow
from connector.settings import ConnectorSettings
from tasks.report import (
    build_history_report,
    draw_history_charts,
    publish_history_artifacts,
    write_history_html,
)
from tasks.runtime import business_run_name

DEFAULT_DAYS = 30
#: A day as the form takes it (or nothing): YYYY-MM-DD.
DAY_PATTERN = r"^(\d{4}-\d{2}-\d{2})?$"


class HistoryReportParams(BaseModel):
    """Which days and which business the report covers, and where its HTML file goes."""

    since: str = Field(
        default="",
        pattern=DAY_PATTERN,
        description="First day (UTC) of the report, as YYYY-MM-DD. Empty: 30 days ending with "
        "`until`.",
    )
    until: str = Field(
        default="",
        pattern=DAY_PATTERN,
        description="Last day (UTC) of the report, included, as YYYY-MM-DD. Empty: today.",
    )
    business: str = Field(default="", description="Business slug. Empty: every business together.")
    output_dir: str = Field(
        default="",
        description="Folder for the HTML report. Empty: the reports folder in NOMI_CONNECTOR_HOME.",
    )

    @field_validator("since", "until")
    @classmethod
    def _a_real_day(cls, text: str) -> str:
        """A day that exists (2026-02-30 does not), or nothing."""
        if text:
            date.fromisoformat(text)  # ValueError names the problem
        return text

    def window(self, today: date) -> ReportWindow:
        """The report window these parameters describe (``today``: the default ``until``)."""
        until = date.fromisoformat(self.until) if self.until else today
        since = (
            date.fromisoformat(self.since)
            if self.since
            else until - timedelta(days=DEFAULT_DAYS - 1)
        )
        return ReportWindow(since=since, until=until, business=self.business or None)


@flow(
    name="publish-history-report",
    flow_run_name=business_run_name("history-report", default="all"),
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    log_prints=False,
)
def publish_history_report(params: HistoryReportParams) -> str:
    """Publish the Nomi run-history report for analysts.

    Covers the last 30 days by default (or `since`..`until`, UTC days), for every business or one
    (`business` slug). Publishes keyed artifacts on the Artifacts page, each with its own version
    history: `history-summary` (markdown: the headline, the charts inline, top failure reasons,
    call latency, longest-waiting items), `history-report` (a link to the HTML file), and the
    tables `history-by-business`, `history-failures`, `history-failures-by-supplier`,
    `history-latency`, `history-call-latency`, `history-trend`, `history-runs`,
    `history-waiting`, `history-sync`, `history-expiring` (with a business: suffix `-{business}`).
    "Held" is the items in review now. Durations are in seconds, rates in percent. Writes one
    self-contained HTML report with charts to `NOMI_CONNECTOR_HOME/reports/` (or `output_dir`)
    and returns its path. Fails when the business does not exist or the database cannot be read.
    """
    settings = ConnectorSettings()
    now = datetime.now(UTC)
    window = params.window(now.date())
    directory = params.output_dir or str(settings.home / "reports")
    report = build_history_report(settings.database_url, window, now)
    charts = draw_history_charts(report)
    html_path = write_history_html(report, directory, charts)
    publish_history_artifacts(report, html_path, charts)
    get_run_logger().info("history report for %s: %s", window.business or "all", html_path)
    return html_path
