"""`make demo --keep-serving` end to end, then Ctrl-C; its summary checked against the DB."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from deployments.serve import load_specs
from tests.deployments.conftest import REPO_ROOT

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(420)]


SERVING = "Your deployments are being served"


def wait_until_polled(api: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The deployments, once every one has been polled by the serving runner (status READY)."""
    deadline = time.monotonic() + timeout
    while True:
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
        if deployments and all(d["status"] == "READY" for d in deployments):
            return list(deployments)
        assert time.monotonic() < deadline, [(d["name"], d["status"]) for d in deployments]
        time.sleep(0.5)


def run_demo_then_ctrl_c(home: Path) -> tuple[int, str, list[str]]:
    """Run ``deployments.demo --keep-serving``; once it serves, press Ctrl-C as a terminal does.

    The demo runs in its own process group and SIGINT goes to the whole group, as Ctrl-C in a
    terminal sends it. Returns the exit status, the whole output, and the deployments the demo's
    Prefect server listed while it was serving.
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

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if SERVING in line:
                serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert serving.wait(timeout=360), "".join(lines)[-4000:]
        api = re.search(r"API (http://127\.0\.0\.1:\d+/api)", "".join(lines))
        assert api, "".join(lines)[-4000:]
        served = wait_until_polled(api.group(1))  # the runner is up: Ctrl-C now stops it
        os.killpg(process.pid, signal.SIGINT)
        status = process.wait(timeout=60)  # it hung here when the server died with the demo
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    reader.join(timeout=30)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{api.group(1)}/health", timeout=5)  # the demo stopped its server
    return status, "".join(lines), sorted(d["name"] for d in served)


def test_demo_runs_end_to_end_serves_until_ctrl_c_and_its_summary_matches_the_database(tmp_path):
    home = tmp_path / "var"
    status, output, served = run_demo_then_ctrl_c(home)
    assert status == 0, output[-4000:]
    assert served == sorted(spec.name for spec in load_specs()), output[-4000:]
    assert "All deployments have been paused" in output

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
    assert total == sum(counts.values()) == 15  # every example row of items.csv and items.jsonl
    assert published == counts.get("published", 0) == with_record
    assert review == counts.get("review", 0)
    assert ready == counts.get("ready", 0)
    assert failed == failing
    # Held on purpose: no rule gives a category, an unconfirmed new supplier, an archived one.
    assert {"bs-0004", "bs-0005", "bs-0102", "bs-0105"} <= held
    for external_id in held:
        assert f"held in review  {external_id}:" in output
    if (REPO_ROOT / "flows/auto_publish_to_nomi.py").exists():
        assert published >= 8, output[-4000:]
    assert "Prefect UI (runs, tasks, artifacts): http://127.0.0.1:" in output
    assert (home / "prefect" / "server.log").exists()
