"""Shared set-up of the connector benchmarks: the sandbox process, Prefect, a database, BENCH lines.

Importing this module before ``prefect`` points Prefect at a temporary ``PREFECT_HOME`` (a
benchmark never touches a real Prefect home or server). Everything runs on loopback: the sandbox
is its own ``nomi-sandbox --test-mode`` process (``python -m sandbox.cli``), so it does not share
the GIL with the side being measured; the connector database is a temporary SQLite file.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

if "prefect" not in sys.modules:  # before anything imports prefect: a throw-away Prefect home
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="nomi-bench-prefect-"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("PREFECT_API_KEY", None)

from connector.store.db import make_engine, migrate
from nomi.models import TokenSet
from nomi.oauth import NomiOAuth
from sandbox.browser import complete_consent
from sandbox.seed import LOGINS

CLIENT_ID = "nomi-connector-sandbox"
CLIENT_SECRET = "sandbox-client-secret"  # the sandbox's seeded, public test secret
REDIRECT_URI = "http://127.0.0.1:8799/oauth/callback"
ACCOUNTANT_EMAIL, ACCOUNTANT_PASSWORD = LOGINS[1][0], LOGINS[1][1]
NO_LIMITS = {
    "per_minute": 0,
    "concurrent": 0,
    "per_day": 0,
    "app_per_minute": 0,
    "token_per_minute": 0,
}


def machine() -> str:
    """nproc, memory and CPU model of this machine (for the results in docs/performance.md)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    return f"nproc={os.cpu_count()} memory={memory} cpu={cpu!r}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sandbox:
    """A running sandbox process."""

    base_url: str
    admin: httpx.Client

    @property
    def api_url(self) -> str:
        """The API root (``/api/v1``)."""
        return f"{self.base_url}/api/v1"

    def oauth(self, http: httpx.Client | None = None) -> NomiOAuth:
        """An OAuth client of the seeded app."""
        return NomiOAuth(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorize_url=f"{self.base_url}/oauth/authorize",
            token_url=f"{self.base_url}/oauth/token",
            revoke_url=f"{self.base_url}/oauth/revoke",
            redirect_uri=REDIRECT_URI,
            scopes=[
                "offline_access",
                "contacts.read",
                "settings.read",
                "expenses.write",
                "sales.write",
            ],
            http=http,
        )

    def settings(self, **values: Any) -> None:
        """Change the sandbox's settings (limits, durations)."""
        self.admin.patch("/settings", json=values).raise_for_status()

    def add_organisations(self, count: int, prefix: str) -> list[str]:
        """Add ``count`` organisations the accountant may grant; returns their tenant ids."""
        ids = []
        for n in range(count):
            answer = self.admin.post(
                "/tenants",
                json={"name": f"{prefix} {n:03d} Ltd", "grant_to": [ACCOUNTANT_EMAIL]},
            )
            answer.raise_for_status()
            ids.append(str(answer.json()["id"]))
        return ids

    def consent(self, tenant_id: str) -> TokenSet:
        """Consent for one organisation through the HTML forms and exchange the code."""
        with httpx.Client(timeout=30) as browser, self.oauth() as oauth:
            verifier, _ = oauth.new_pkce()
            state = oauth.new_state()
            answer = complete_consent(
                browser,
                oauth.authorization_url(state, verifier),
                email=ACCOUNTANT_EMAIL,
                password=ACCOUNTANT_PASSWORD,
                tenant_id=tenant_id,
            )
            if answer.get("state") != state or "code" not in answer:
                raise RuntimeError(f"consent for {tenant_id} failed: {answer.get('error')}")
            return oauth.exchange_code(answer["code"], verifier)

    def journal(self, limit: int = 50_000) -> list[dict[str, Any]]:
        """The sandbox's request journal (oldest first)."""
        answer = self.admin.get("/requests", params={"limit": limit}, timeout=60)
        answer.raise_for_status()
        return list(answer.json())


@contextmanager
def sandbox_process(*, timeout: float = 60.0) -> Iterator[Sandbox]:
    """Run ``nomi-sandbox --test-mode`` (in-memory store, demo seed) in its own process."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sandbox.cli",
        "--test-mode",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        ":memory:",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=f"{base_url}/_admin", timeout=60)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the sandbox exited ({process.returncode}): {err[-2000:]}")
            try:
                if admin.get("/settings").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sandbox did not start within {timeout} s")
            time.sleep(0.1)
        yield Sandbox(base_url=base_url, admin=admin)
    finally:
        admin.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


@contextmanager
def prefect_server() -> Iterator[None]:
    """A local Prefect server for the flows (``prefect_test_harness``, temporary database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def temp_database(folder: Path) -> str:
    """A migrated connector database in a SQLite file under ``folder``; returns its URL."""
    url = f"sqlite:///{folder}/connector.db"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def count_task_runs(flow_run_id: uuid.UUID, *, settle_seconds: float = 3.0) -> int:
    """Task runs the Prefect API holds for one flow run, once the count has settled.

    Prefect 3 records task runs from their events (the server's task-run recorder), so right after
    the flow returns the API can still lack some (a first reading said 134 of 151): the count is
    read again until it has not changed for ``settle_seconds`` (at most a minute).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def read(client: Any) -> int:
        total = 0
        while True:
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                limit=200,
                offset=total,
            )
            total += len(page)
            if len(page) < 200:
                return total

    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        count, stable_since = read(client), time.monotonic()
        while time.monotonic() - stable_since < settle_seconds and time.monotonic() < deadline:
            time.sleep(0.5)
            again = read(client)
            if again != count:
                count, stable_since = again, time.monotonic()
        return count


def bench_line(name: str, ratio: float, target: str, **extra: object) -> str:
    """The one ``BENCH`` line of a measurement (ratio, target, then the raw numbers)."""
    tail = " ".join(f"{k}={v}" for k, v in extra.items())
    return f"BENCH {name} ratio={ratio:.3f} target={target} {tail}".rstrip()
