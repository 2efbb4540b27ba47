"""`make demo --keep-serving` end to end, then Ctrl-C; its summary checked against the DB."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from deployments.serve import load_specs
from tests.deployments.conftest import REPO_ROOT

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(600)]


SERVING = "Your deployments are being served"
REPORT_KEY = "history-summary-bright-smile"
#: The deployments the demo's own runs go through.
DEMO_DEPLOYMENTS = [
    "connect-to-nomi/manual",
    "sync-nomi-reference-data/scheduled",
    "verify-nomi-connection/scheduled",
    "auto-publish-to-nomi/per-business",
    "publish-items-to-nomi/manual",
    "publish-history-report/scheduled",
]


def wait_until_polled(api: str, since: datetime, timeout: float = 90) -> list[dict[str, Any]]:
    """The deployments, once the keep-serving runner has polled every one after ``since``.

    The demo's own runs went through a runner serving the same deployments, so ``READY`` alone
    is not enough: ``last_polled`` must be newer than the moment the demo said it serves.
    """
    deadline = time.monotonic() + timeout
    while True:
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
        polled = [
            d["last_polled"] and datetime.fromisoformat(d["last_polled"]) > since
            for d in deployments
        ]
        if deployments and all(polled) and all(d["status"] == "READY" for d in deployments):
            return list(deployments)
        assert time.monotonic() < deadline, [(d["name"], d["last_polled"]) for d in deployments]
        time.sleep(0.5)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def can_browse() -> bool:
    """Whether headless Chromium can be driven here (Debian's build and Playwright)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.exists()


def summary_as_the_ui_shows_it(ui: str, key: str, screenshot: Path) -> dict[str, Any]:
    """Open the newest version of a markdown artifact in the Prefect UI, as ops would.

    Returns its images (source prefix and natural size) and ``file://`` links, and saves a
    screenshot of the page.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{ui}/artifacts/key/{key}")
            page.locator("a").filter(has_text=re.compile(r"^[0-9a-f]{8}$")).first.click(
                timeout=60_000
            )
            page.wait_for_function(
                "document.querySelectorAll('img[src^=\"data:image/png\"]').length >= 4 && "
                "[...document.images].every(i => i.complete)",
                timeout=60_000,
            )
            images = page.eval_on_selector_all(
                "img[src^='data:']", "els => els.map(e => [e.alt, e.naturalWidth, e.naturalHeight])"
            )
            links = page.eval_on_selector_all(
                "a[href^='file:']", "els => els.map(e => e.getAttribute('href'))"
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"images": images, "links": links}


def runs_per_deployment(api: str, deployments: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``<flow>/<deployment>`` -> the state names of its flow runs."""
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
    names = {d["id"]: f"{flows[d['flow_id']]}/{d['name']}" for d in deployments}
    runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    found: dict[str, list[str]] = {name: [] for name in names.values()}
    for run in runs:
        if run["deployment_id"] in names:
            found[names[run["deployment_id"]]].append(run["state"]["name"])
    return found


def run_demo_then_ctrl_c(
    home: Path,
) -> tuple[int, str, list[dict[str, Any]], dict[str, list[str]], dict[str, Any] | None]:
    """Run ``deployments.demo --keep-serving``; once it serves, press Ctrl-C as a terminal does.

    The demo runs in its own process group and SIGINT goes to the whole group, as Ctrl-C in a
    terminal sends it. Returns the exit status, the whole output, the deployments the demo's
    Prefect server listed while it was serving, the states of each deployment's runs and (when
    Chromium is here) the report's summary artifact as the UI showed it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NOMI_"))}
    env.update(NOMI_CONNECTOR_HOME=str(home), DO_NOT_TRACK="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.demo", "--ui-port", "0", "--keep-serving"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    serving = threading.Event()
    serving_since: list[datetime] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if SERVING in line and not serving.is_set():
                serving_since.append(datetime.now(UTC))
                serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert serving.wait(timeout=480), "".join(lines)[-4000:]
        api = re.search(r"API (http://127\.0\.0\.1:\d+/api)", "".join(lines))
        assert api, "".join(lines)[-4000:]
        served = wait_until_polled(api.group(1), serving_since[0])  # Ctrl-C now stops it
        runs = runs_per_deployment(api.group(1), served)
        shown = None
        if can_browse():
            ui = api.group(1).removesuffix("/api")
            shot = home.parent / "history-summary-in-the-ui.png"
            shown = summary_as_the_ui_shows_it(ui, REPORT_KEY, shot)
        os.killpg(process.pid, signal.SIGINT)
        status = process.wait(timeout=60)  # it hung here when the server died with the demo
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    reader.join(timeout=30)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{api.group(1)}/health", timeout=5)  # the demo stopped its server
    return status, "".join(lines), served, runs, shown


def test_demo_runs_end_to_end_serves_until_ctrl_c_and_its_summary_matches_the_database(tmp_path):
    home = tmp_path / "var"
    status, output, served, runs, shown = run_demo_then_ctrl_c(home)
    assert status == 0, output[-4000:]
    specs = load_specs()
    assert sorted(d["name"] for d in served) == sorted(spec.name for spec in specs), output[-4000:]
    # Served WITH the schedules of prefect.yaml, active, until Ctrl-C pauses them (and says so).
    scheduled = [d for d in served if d["schedules"]]
    assert len(scheduled) == len([spec for spec in specs if spec.schedules]) > 0
    for served_one in scheduled:
        assert not served_one["paused"], served_one["name"]
        assert all(s["active"] for s in served_one["schedules"]), served_one["name"]
    assert "Serving the deployments WITH their schedules" in output
    assert "All deployments have been paused" in output
    # The demo's own runs went through the deployments, so the UI lists them there.
    for name in DEMO_DEPLOYMENTS:
        assert "Completed" in runs[name], (name, runs)

    found = re.search(
        r"^SUMMARY published=(\d+) review=(\d+) ready=(\d+) failed=(\d+) total=(\d+)$",
        output,
        re.MULTILINE,
    )
    assert found, output[-4000:]
    published, review, ready, failed, total = map(int, found.groups())

    engine = create_engine(f"sqlite:///{home / 'connector.db'}")
    with engine.connect() as db:
        counts: dict[str, int] = dict(
            db.execute(text("SELECT status, count(*) FROM items GROUP BY status")).all()
        )
        with_record = db.execute(
            text(
                "SELECT count(*) FROM items"
                " WHERE status = 'published' AND nomi_record_id IS NOT NULL"
            )
        ).scalar_one()
        failing = db.execute(
            text(
                "SELECT count(*) FROM items"
                " WHERE status != 'published' AND last_error_code IS NOT NULL"
            )
        ).scalar_one()
        held = {
            row[0]
            for row in db.execute(text("SELECT external_id FROM items WHERE status = 'review'"))
        }
        connection = db.execute(text("SELECT status FROM connections")).scalar_one()
    engine.dispose()

    assert connection == "connected"
    assert total == sum(counts.values()) == 18  # every example item of items.csv and items.jsonl
    assert published == counts.get("published", 0) == with_record
    assert review == counts.get("review", 0)
    assert ready == counts.get("ready", 0)
    assert failed == failing
    # Held on purpose: no rule gives a category, an unconfirmed new supplier, an archived one.
    assert {"bs-0004", "bs-0005", "bs-0102", "bs-0105"} <= held
    for external_id in held:
        assert f"held in review  {external_id}:" in output
    if (REPO_ROOT / "flows/auto_publish_to_nomi.py").exists():
        assert published >= 11, output[-4000:]
    # The documents of issue 20: a supplier credit note, a three-line invoice, a EUR receipt.
    assert "published       bs-0106: supplier credit note, credits bs-0002" in output
    assert "published       bs-0107: sales invoice, 3 lines" in output
    assert "published       bs-0108: expense, EUR 96.00 at 0.853412" in output
    assert "Prefect UI (runs, tasks, artifacts): http://127.0.0.1:" in output
    assert (home / "prefect" / "server.log").exists()
    report = re.search(r"^History report: (\S+\.html)$", output, re.MULTILINE)
    assert report, output[-4000:]
    page = Path(report.group(1)).read_text(encoding="utf-8")
    assert Path(report.group(1)).parent == home / "reports"
    assert page.count("data:image/png;base64,") == 4
    assert f"<tr><th>Held in review now (items)</th><td>{review}</td></tr>" in page
    assert f"/artifacts/key/{REPORT_KEY}" in output
    if shown is not None:  # the Prefect UI (on the demo's free port) renders the inline charts
        assert len(shown["images"]) == 4, shown
        for _, width, height in shown["images"]:
            assert (width, height) == (864, 364), shown
        assert shown["links"] == [Path(report.group(1)).as_uri()], shown

    # Every attempt that reached Nomi recorded Nomi's HTTP status, successes included.
    engine = create_engine(f"sqlite:///{home / 'connector.db'}")
    with engine.connect() as db:
        statuses = db.execute(
            text("SELECT outcome, http_status FROM publish_attempts WHERE outcome != 'held'")
        ).all()
    engine.dispose()
    assert statuses
    assert all(status is not None for _, status in statuses), statuses
    assert {status for outcome, status in statuses if outcome == "published"} <= {200, 201}
