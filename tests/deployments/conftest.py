"""Fixtures of the deployment tests: the test server's API URL and a served-deployments process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api_url(prefect_server: None) -> str:
    """The session Prefect test server's API URL (for subprocesses)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the test harness sets PREFECT_API_URL"
    return str(url)


@pytest.fixture
def subprocess_env(api_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a Prefect CLI or serve subprocess talking to the test server."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        NOMI_CONNECTOR_REPO=str(REPO_ROOT),
        NOMI_CONNECTOR_HOME=str(tmp_path / "home"),
    )
    return env


@pytest.fixture
def serve_process(
    subprocess_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``python -m deployments.serve`` with arguments; every process is stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"serve-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", *args],
            cwd=REPO_ROOT,
            env=env or subprocess_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str) -> object:
    """Poll ``predicate`` until it returns something truthy or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


from tests.flows.conftest import (  # noqa: E402  (the flow tests' sandbox and connected business)
    connect_business,
    connector_db,
    db_session_for,
    nomi_app,
    sandbox,
)

__all__ = ["connect_business", "connector_db", "db_session_for", "nomi_app", "sandbox"]
