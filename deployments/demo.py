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
from dataclasses import dataclass
from pathlib import Path

from deployments.demo_steps import (
    BUSINESS_SLUG,
    Demo,
    configure,
    connect,
    import_examples,
    publish_confirming_new_suppliers,
    reset_home,
    run_flow,
    save_app_block,
    seed,
)
from deployments.local import free_port, prefect_environment, prefect_server, serving_app


@dataclass
class Summary:
    """Where the business's items ended up."""

    counts: dict[str, int]
    review: list[tuple[str, str]]
    failed: list[tuple[str, str]]


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
    engine.dispose()
    return Summary(counts, review, failed)


def print_summary(demo: Demo, summary: Summary, ui_url: str) -> None:
    """The closing summary, with a machine-readable ``SUMMARY`` line."""
    c = summary.counts
    demo.say("")
    demo.say(
        f"SUMMARY published={c.get('published', 0)} review={c.get('review', 0)} "
        f"ready={c.get('ready', 0)} failed={len(summary.failed)} total={sum(c.values())}"
    )
    for external_id, reasons in summary.review:
        demo.say(f"  held in review  {external_id}: {reasons}")
    for external_id, error in summary.failed:
        demo.say(f"  failed          {external_id}: {error}")
    demo.say("")
    demo.say(f"Prefect UI (runs, tasks, artifacts): {ui_url}")
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
            status = run_steps(demo)
            print_summary(demo, summarise(demo.database_url), api_url.removesuffix("/api"))
            if keep_serving:
                serve_until_interrupted(demo)
    return status


def run_steps(demo: Demo) -> int:
    """The demo's steps in order; 1 when a step that exists failed."""
    seed(demo)
    save_app_block(demo)
    sync = {"business": BUSINESS_SLUG, "mode": "incremental"}
    report = {"business": BUSINESS_SLUG, "output_dir": str(demo.home / "reports")}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("connect-to-nomi", lambda: connect(demo)),
        (
            "sync-nomi-reference-data",
            lambda: run_flow(demo, "sync-nomi-reference-data", "sync_nomi_reference_data", sync),
        ),
        ("configure", lambda: configure(demo)),
        ("import examples", lambda: import_examples(demo)),
        (
            "auto-publish-to-nomi",
            lambda: run_flow(
                demo,
                "auto-publish-to-nomi",
                "auto_publish_to_nomi",
                {"business": BUSINESS_SLUG, "trigger": "manual"},
            ),
        ),
        ("publish-items-to-nomi", lambda: publish_confirming_new_suppliers(demo)),
        (
            "publish-history-report",
            lambda: run_flow(demo, "publish-history-report", "publish_history_report", report),
        ),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as error:  # a demo step's failure is reported, and the rest still run
            demo.record(name, "failed", f"{type(error).__name__}: {error}"[:300])
    return 1 if any(s.outcome == "failed" for s in demo.steps) else 0


def serve_until_interrupted(demo: Demo) -> None:
    """Serve the deployments (manual runs from the UI) until Ctrl-C."""
    from prefect import serve

    from deployments.serve import available_deployments, load_specs

    deployments, _ = available_deployments(load_specs(), with_schedules=False)
    demo.say("Serving the deployments and keeping the servers up: Ctrl-C to stop.")
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
