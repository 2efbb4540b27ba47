"""`make demo` end to end: a subprocess on a temporary home, its summary checked against the DB."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.deployments.conftest import REPO_ROOT

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(420)]


def run_demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NOMI_"))}
    env.update(NOMI_CONNECTOR_HOME=str(home), DO_NOT_TRACK="1")
    return subprocess.run(
        [sys.executable, "-m", "deployments.demo", "--ui-port", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


def test_demo_runs_end_to_end_and_its_summary_matches_the_database(tmp_path):
    home = tmp_path / "var"
    result = run_demo(home)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    found = re.search(
        r"^SUMMARY published=(\d+) review=(\d+) ready=(\d+) failed=(\d+) total=(\d+)$",
        result.stdout,
        re.MULTILINE,
    )
    assert found, output[-4000:]
    published, review, ready, failed, total = map(int, found.groups())

    engine = create_engine(f"sqlite:///{home / 'connector.db'}")
    with engine.connect() as db:
        counts = dict(db.execute(text("SELECT status, count(*) FROM items GROUP BY status")).all())
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
        assert f"held in review  {external_id}:" in result.stdout
    if (REPO_ROOT / "flows/auto_publish_to_nomi.py").exists():
        assert published >= 8, output[-4000:]
    assert "Prefect UI (runs, tasks, artifacts): http://127.0.0.1:" in result.stdout
    assert (home / "prefect" / "server.log").exists()
