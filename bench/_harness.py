"""Shared set-up of the connector benchmarks: the sandbox process, Prefect, connected businesses.

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
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if "prefect" not in sys.modules:  # before anything imports prefect: a throw-away Prefect home
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="nomi-bench-prefect-"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("PREFECT_API_KEY", None)

from connector.items.assess import reassess
from connector.rules.vocabulary import ConnectionStatus, ItemKind, ItemStatus, Role
from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from connector.store.models import Business, Connection, ConnectionSettings, Item, Membership, User
from connector.sync.catalog import LISTS
from connector.sync.lists import sync_list
from nomi.client import NomiClient, StaticTokenProvider
from nomi.models import TokenSet
from nomi.oauth import NomiOAuth
from sandbox.browser import complete_consent
from sandbox.seed import LOGINS, stable_id

if TYPE_CHECKING:
    from blocks.app import NomiApp

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
SUPPLIER, CUSTOMER = "Staples UK", "NHS England"  # seeded in organisations made like Bright Smile


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


@dataclass
class BenchBusiness:
    """A business connected to a sandbox organisation."""

    slug: str
    business_id: uuid.UUID
    connection_id: uuid.UUID
    tenant_id: str
    credentials_block: str | None
    access_token: str


def save_app_block(sandbox: Sandbox) -> str:
    """Save a `NomiApp` block pointing at the sandbox; returns its name."""
    from blocks.app import NomiApp

    name = f"nomi-bench-{uuid.uuid4().hex[:8]}"
    NomiApp(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=f"{sandbox.base_url}/oauth/authorize",
        token_url=f"{sandbox.base_url}/oauth/token",
        revoke_url=f"{sandbox.base_url}/oauth/revoke",
        api_base_url=sandbox.base_url,
        redirect_uri=REDIRECT_URI,
    ).save(name)
    return name


def connect_businesses(
    sandbox: Sandbox,
    database_url: str,
    tenant_ids: list[str],
    *,
    save_blocks: bool = True,
    auto_publish: bool = True,
) -> list[BenchBusiness]:
    """One consent per organisation, a credentials block each, and a connected business row.

    Args:
        sandbox: The running sandbox.
        database_url: The connector database.
        tenant_ids: Organisations to connect (one business each).
        save_blocks: Save a `NomiCredentials` block per business (needs a Prefect server).
        auto_publish: The businesses' auto-publish setting.

    Returns:
        The connected businesses, in the order of ``tenant_ids``.
    """
    from nomi.models import Organisation

    engine = make_engine(database_url)
    found: list[BenchBusiness] = []
    run = uuid.uuid4().hex[:6]
    for n, tenant_id in enumerate(tenant_ids):
        tokens = sandbox.consent(tenant_id)
        slug = f"bench-{run}-{n:03d}"
        block = f"nomi-credentials-{slug}" if save_blocks else None
        if block is not None:
            from blocks.credentials import NomiCredentials

            NomiCredentials.from_tokens(
                tokens,
                Organisation(tenant_id=tenant_id, tenant_name=slug),
                consent_expires_at=datetime.now(UTC) + timedelta(days=365),
            ).save(block)
        with db_session(engine) as session:
            business = Business(slug=slug, name=f"Bench business {n}")
            admin = User(email=f"admin-{slug}@bench.example", name=f"Admin {n}")
            session.add_all([business, admin])
            session.flush()
            session.add(Membership(user_id=admin.id, business_id=business.id, role=Role.ADMIN))
            connection = Connection(
                business_id=business.id,
                nomi_tenant_id=tenant_id,
                organisation_name=slug,
                status=ConnectionStatus.CONNECTED,
                scopes=list(tokens.scopes),
                credentials_block_name=block,
                connected_at=datetime.now(UTC),
                consent_expires_at=datetime.now(UTC) + timedelta(days=365),
            )
            session.add(connection)
            session.flush()
            session.add(
                ConnectionSettings(
                    connection_id=connection.id, auto_publish=auto_publish, warn_new_supplier=False
                )
            )
            session.commit()
            found.append(
                BenchBusiness(
                    slug=slug,
                    business_id=business.id,
                    connection_id=connection.id,
                    tenant_id=tenant_id,
                    credentials_block=block,
                    access_token=tokens.access_token.get_secret_value(),
                )
            )
    engine.dispose()
    return found


def mirror_lists(sandbox: Sandbox, database_url: str, business: BenchBusiness) -> None:
    """Mirror the five lists with the real sync (no throttle, so no tenant budget is spent)."""
    engine = make_engine(database_url)
    tokens = StaticTokenProvider(business.access_token)
    with NomiClient(sandbox.base_url, business.tenant_id, tokens) as nomi:
        for list_name in LISTS:
            sync_list(
                engine, nomi, connection_id=business.connection_id, list_name=list_name, mode="full"
            )
    engine.dispose()


def add_ready_items(database_url: str, business: BenchBusiness, count: int) -> None:
    """Add ``count`` items (half cost items, half sales items, no image) and assess them Ready."""
    category = {ItemKind.COST: "453", ItemKind.SALES: "200"}
    contact = {ItemKind.COST: SUPPLIER, ItemKind.SALES: CUSTOMER}
    engine = make_engine(database_url)
    with db_session(engine) as session:
        rows = []
        for n in range(count):
            kind = ItemKind.COST if n % 2 == 0 else ItemKind.SALES
            rows.append(
                Item(
                    business_id=business.business_id,
                    kind=kind,
                    status=ItemStatus.REVIEW,
                    review_reasons=["not yet assessed"],
                    external_id=f"bench-{n}",
                    contact_name=contact[kind],
                    reference=f"B{n:05d}-{uuid.uuid4().hex[:8]}",
                    date=date(2026, 3, 2),
                    currency="GBP",
                    total=Decimal("120.00"),
                    tax_amount=Decimal("20.00"),
                    category_edit=stable_id(business.tenant_id, "category", category[kind]),
                    tax_rate_edit=stable_id(business.tenant_id, "tax_rate", "STD20"),
                )
            )
        session.add_all(rows)
        session.commit()
        reassess(session, business_id=business.business_id)
        session.commit()
        ready = session.query(Item).filter(
            Item.business_id == business.business_id,  # type: ignore[arg-type]
            Item.status == ItemStatus.READY,  # type: ignore[arg-type]
        )
        if ready.count() != count:
            raise RuntimeError(f"{business.slug}: only {ready.count()} of {count} items are ready")
    engine.dispose()


def load_app(name: str) -> NomiApp:
    """Load a saved `NomiApp` block."""
    from blocks.app import NomiApp

    return NomiApp.load(name)  # type: ignore[return-value]


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
