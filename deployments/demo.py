"""``make demo``: the connector's main job end to end on loopback, with nothing running beforehand.

Starts a Prefect server, the Nomi sandbox and the OAuth callback under ``NOMI_CONNECTOR_HOME``
(``./var``), runs the steps of ``deployments.demo_steps`` and prints a summary. Each run resets the
demo's connector and sandbox databases; the Prefect history is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deployments.demo_steps import (
    BUSINESS_SLUG,
    Demo,
    configure,
    connect,
    import_examples,
    publish_confirming_new_suppliers,
    reset_home,
    run_deployment_step,
    save_app_block,
    seed,
)
from deployments.local import (
    StartupError,
    free_port,
    prefect_environment,
    prefect_server,
    serving_app,
    serving_deployments,
)

if TYPE_CHECKING:
    from connector.store.models import Item
    from deployments.serve import DeploymentSpec

#: The report's summary artifact (markdown, charts inline) for the demo's business.
REPORT_KEY = f"history-summary-{BUSINESS_SLUG}"


@dataclass
class Summary:
    """Where the business's items ended up."""

    counts: dict[str, int]
    review: list[tuple[str, str]]
    failed: list[tuple[str, str]]
    #: Published credit notes, items with lines and foreign-currency items, with what they became.
    documents: list[tuple[str, str]] = field(default_factory=list)


def summarise(database_url: str) -> Summary:
    """Count the business's items by status, with review reasons and last errors."""
    from sqlmodel import select

    from connector.store.db import make_engine, session
    from connector.store.models import Business, Item

    engine = make_engine(database_url)
    with session(engine) as db:
        business = db.exec(select(Business).where(Business.slug == BUSINESS_SLUG)).one()
        items = list(
            db.exec(select(Item).where(Item.business_id == business.id).order_by(Item.external_id))
        )
        counts: dict[str, int] = {}
        for item in items:
            counts[item.status] = counts.get(item.status, 0) + 1
        review = [
            (i.external_id, "; ".join(i.review_reasons)) for i in items if i.status == "review"
        ]
        failed = [
            (i.external_id, f"{i.last_error_code}: {i.last_error_message}")
            for i in items
            if i.status != "published" and i.last_error_code
        ]
        documents = [
            (i.external_id, _became(i)) for i in items if i.status == "published" and _notable(i)
        ]
    engine.dispose()
    return Summary(counts, review, failed, documents)


def _notable(item: Item) -> bool:
    """A credit note, an item with lines or one in a currency other than the demo's GBP."""
    return item.document_type == "credit_note" or bool(item.lines) or item.currency != "GBP"


def _became(item: Item) -> str:
    """What a published item became in Nomi, in words (``supplier credit note, credits X``)."""
    words = [str(item.nomi_record_type or "record").replace("_", " ")]
    if item.credits_external_id:
        words.append(f"credits {item.credits_external_id}")
    if item.lines:
        words.append(f"{len(item.lines)} lines")
    if item.currency != "GBP":
        rate = f" at {item.exchange_rate}" if item.exchange_rate else " at Nomi's daily rate"
        words.append(f"{item.currency} {item.total}{rate}")
    return ", ".join(words)


def latest_report(directory: Path) -> Path | None:
    """The newest HTML history report in ``directory`` (None when there is none)."""
    reports = sorted(directory.glob("history-report-*.html"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


def print_summary(demo: Demo, summary: Summary, ui_url: str) -> None:
    """The closing summary, with a machine-readable ``SUMMARY`` line and where to look next."""
    c = summary.counts
    demo.say("")
    demo.say(
        f"SUMMARY published={c.get('published', 0)} review={c.get('review', 0)} "
        f"ready={c.get('ready', 0)} failed={len(summary.failed)} total={sum(c.values())}"
    )
    for external_id, became in summary.documents:
        demo.say(f"  published       {external_id}: {became}")
    for external_id, reasons in summary.review:
        demo.say(f"  held in review  {external_id}: {reasons}")
    for external_id, error in summary.failed:
        demo.say(f"  failed          {external_id}: {error}")
    demo.say("")
    report = latest_report(demo.home / "reports")
    if report is not None:
        demo.say(f"History report: {report}")
        demo.say(f"  open it in a browser: {report.as_uri()}")
        demo.say(f"  summary with charts in the UI: {ui_url}/artifacts/key/{REPORT_KEY}")
    demo.say(f"Prefect UI (runs, tasks, artifacts): {ui_url}")
    demo.say(f"  the demo's runs, under their deployments: {ui_url}/deployments")
    demo.say(
        "Reopen it later with `make ui` (or PREFECT_HOME="
        f"{demo.home / 'prefect'} .venv/bin/prefect server start)."
    )


def run_demo(demo: Demo, *, keep_serving: bool, ui_port: int) -> int:
    """Start the servers, run every step, print the summary; returns the exit status."""
    from sandbox.settings import SandboxSettings
    from sandbox.testing import running_sandbox

    prefect_home = demo.home / "prefect"
    demo.say(f"Starting a Prefect server (PREFECT_HOME={prefect_home}) ...")
    with prefect_server(prefect_home, port=ui_port) as api_url:
        os.environ.update(prefect_environment(prefect_home, api_url))
        from connector.settings import ConnectorSettings
        from deployments.callback import create_callback_app

        sandbox_settings = SandboxSettings(test_mode=True, db_path=str(demo.home / "sandbox.db"))
        callback_app = create_callback_app(ConnectorSettings(home=demo.home))
        with (
            running_sandbox(sandbox_settings) as sandbox,
            serving_app(callback_app, port=free_port(), name="oauth-callback") as callback_url,
        ):
            demo.sandbox_url, demo.callback_url = sandbox.base_url, callback_url
            demo.say(f"Sandbox {sandbox.base_url}, callback {callback_url}, API {api_url}")
            status = run_steps(demo, api_url)
            print_summary(demo, summarise(demo.database_url), api_url.removesuffix("/api"))
            if keep_serving:
                serve_until_interrupted(demo)
    return status


def run_steps(demo: Demo, api_url: str) -> int:
    """The demo's steps in order, each flow run through its served deployment; 1 when a step
    failed."""
    from deployments.serve import load_specs

    seed(demo)
    save_app_block(demo)
    sync = {"business": BUSINESS_SLUG, "mode": "incremental"}
    report = {"business": BUSINESS_SLUG, "output_dir": str(demo.home / "reports")}
    publish = {"business": BUSINESS_SLUG}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("connect-to-nomi", lambda: connect(demo)),
        (
            "sync-nomi-reference-data",
            lambda: run_deployment_step(
                demo, "sync-nomi-reference-data", "sync-nomi-reference-data/scheduled", sync
            ),
        ),
        (
            "verify-nomi-connection",
            lambda: run_deployment_step(
                demo,
                "verify-nomi-connection",
                "verify-nomi-connection/scheduled",
                {"business": BUSINESS_SLUG},
            ),
        ),
        ("configure", lambda: configure(demo)),
        ("import examples", lambda: import_examples(demo)),
        (
            "auto-publish-to-nomi",
            lambda: run_deployment_step(
                demo, "auto-publish-to-nomi", "auto-publish-to-nomi/per-business", publish
            ),
        ),
        ("publish-items-to-nomi", lambda: publish_confirming_new_suppliers(demo)),
        (
            "publish-history-report",
            lambda: run_deployment_step(
                demo, "publish-history-report", "publish-history-report/scheduled", report
            ),
        ),
    ]
    log_path = demo.home / "serve.log"
    demo.say(f"Serving the deployments for the demo's runs (runner log: {log_path}) ...")
    try:
        with serving_deployments(api_url, log_path, expected=len(load_specs())):
            for name, step in steps:
                try:
                    step()
                except Exception as error:  # a step's failure is reported; the rest still run
                    demo.record(name, "failed", f"{type(error).__name__}: {error}"[:300])
    except StartupError as error:
        demo.record("serve the deployments", "failed", str(error)[:300])
    return 1 if any(s.outcome == "failed" for s in demo.steps) else 0


def describe_schedules(specs: list[DeploymentSpec]) -> list[str]:
    """One line per scheduled deployment: its name and schedules as ``prefect.yaml`` gives them."""
    lines = []
    for spec in specs:
        flow = spec.entrypoint.rsplit(":", 1)[1].replace("_", "-")
        for schedule in spec.schedules:
            when = schedule.get("cron") or f"every {schedule.get('interval')} s"
            zone = schedule.get("timezone", "UTC")
            lines.append(f"  {flow}/{spec.name}: {when} ({zone}) {schedule.get('slug', '')}")
    return lines


def serve_until_interrupted(demo: Demo) -> None:
    """Serve the deployments with their schedules (and manual runs from the UI) until Ctrl-C."""
    from prefect import serve

    from deployments.serve import available_deployments, load_specs

    specs = load_specs()
    deployments, _ = available_deployments(specs, with_schedules=True)
    demo.say("Serving the deployments WITH their schedules until Ctrl-C; scheduled runs start:")
    for line in describe_schedules(specs):
        demo.say(line)
    demo.say("(Ctrl-C pauses the schedules again and stops the servers.)")
    with contextlib.suppress(KeyboardInterrupt):
        serve(*deployments)


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.demo [--keep-serving]``."""
    parser = argparse.ArgumentParser(prog="python -m deployments.demo", description=__doc__)
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="keep the servers up (and serve the deployments) until Ctrl-C",
    )
    parser.add_argument(
        "--ui-port", type=int, default=4200, help="Prefect server port (a free one if taken)"
    )
    args = parser.parse_args(argv)
    home = Path(os.environ.get("NOMI_CONNECTOR_HOME", "./var")).resolve()
    database_url = f"sqlite:///{home / 'connector.db'}"
    os.environ.update(NOMI_CONNECTOR_HOME=str(home), NOMI_CONNECTOR_DATABASE_URL=database_url)
    os.environ.update(prefect_environment(home / "prefect"))
    reset_home(home)
    demo = Demo(home=home, database_url=database_url)
    demo.say(f"Nomi connector demo in {home} (connector and sandbox data reset)")
    return run_demo(demo, keep_serving=args.keep_serving, ui_port=free_port(args.ui_port))


if __name__ == "__main__":
    sys.exit(main())
