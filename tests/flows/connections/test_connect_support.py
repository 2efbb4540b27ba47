"""Fixtures and helpers of the connect/reconnect tests, and the callback's own refusals.

The callback app runs in a uvicorn thread on a free loopback port; a `NomiApp` block points its
``redirect_uri`` at it. Flows run in a background thread; the tests poll the Prefect API until the
run is Paused, read the authorize link from its artifact, complete the consent pages, and GET the
callback URL as the browser would.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter
from prefect.client.schemas.objects import Artifact as ArtifactResponse
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from sqlalchemy import inspect, text
from sqlmodel import Session

from connector.rules.vocabulary import Role
from connector.settings import ConnectorSettings
from connector.store.db import make_engine
from deployments.callback import create_callback_app
from flows.connect_to_nomi import ConnectParams, connect_to_nomi
from flows.reconnect_to_nomi import ReconnectParams, reconnect_to_nomi
from sandbox.browser import complete_consent
from sandbox.testing import SandboxHandle
from tests.connector.factories import make_business, make_membership, make_user
from tests.flows.conftest import (
    ACCOUNTANT_EMAIL,
    ACCOUNTANT_PASSWORD,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    save_nomi_app,
)

#: Sign in at Nomi's consent pages as the owner (the default is the accountant).
OWNER = {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}


@dataclass
class CallbackServer:
    """The callback app listening on a loopback port."""

    base_url: str

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to register in the NomiApp block."""
        return f"{self.base_url}/oauth/callback"


@contextmanager
def serve_callback(app: FastAPI) -> Iterator[CallbackServer]:
    """Serve a callback app on a free loopback port in a uvicorn thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("callback server did not start")
        time.sleep(0.02)
    try:
        yield CallbackServer(base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def callback(connector_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CallbackServer]:
    """The callback web app on a free port, on the test's connector database."""
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    with serve_callback(create_callback_app(ConnectorSettings(database_url=connector_db))) as cb:
        yield cb


@pytest.fixture
def app_block(prefect_server: None, sandbox: SandboxHandle, callback: CallbackServer) -> str:
    """A saved `NomiApp` block whose redirect URI is the test's callback; returns its name."""
    return save_nomi_app(sandbox, prefix="nomi-cb", redirect_uri=callback.redirect_uri)


@dataclass
class Member:
    """A business with one member (not connected)."""

    slug: str
    business_id: uuid.UUID
    user_id: uuid.UUID
    email: str


@pytest.fixture
def make_member(db_session_for: Callable[[], Session]) -> Callable[..., Member]:
    """Make a business and a member of it with a role (default admin)."""

    def make(role: str = Role.ADMIN) -> Member:
        with db_session_for() as s:
            business = make_business(s)
            user = make_user(s)
            make_membership(s, user=user, business=business, role=role)
            return Member(business.slug, business.id, user.id, user.email)

    return make


@dataclass
class BackgroundRun:
    """A flow called in a background thread; ``outcome`` is its final state once done."""

    thread: threading.Thread
    outcome: dict[str, Any] = field(default_factory=dict)

    def join(self, timeout: float = 60) -> Any:
        """Wait for the flow; return its final state."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "flow did not finish"
        return self.outcome["state"]


def start_flow(flow_fn: Any, params: Any) -> BackgroundRun:
    """Call a flow in a thread (return_state=True)."""
    run = BackgroundRun(thread=threading.Thread(target=lambda: None))

    def target() -> None:
        run.outcome["state"] = flow_fn(params, return_state=True)

    run.thread = threading.Thread(target=target, daemon=True)
    run.thread.start()
    return run


_CONSENT_FLOWS: dict[str, tuple[Any, type[ConnectParams]]] = {
    "connect": (connect_to_nomi, ConnectParams),
    "reconnect": (reconnect_to_nomi, ReconnectParams),
}


def start_paused(
    purpose: str, app_block: str, business: str, acting_user: str, **params: Any
) -> tuple[BackgroundRun, FlowRun]:
    """Start connect-to-nomi or reconnect-to-nomi (``purpose``) in a thread; return it paused."""
    flow_fn, model = _CONSENT_FLOWS[purpose]
    run = start_flow(
        flow_fn, model(business=business, acting_user=acting_user, app_block=app_block, **params)
    )
    return run, wait_until_paused(f"{purpose}-{business}")


def wait_until_paused(run_name: str, timeout: float = 60) -> FlowRun:
    """Poll the Prefect API until the newest run named ``run_name`` is Paused."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
            if runs and runs[0].state is not None and runs[0].state.is_paused():
                return runs[0]
            if runs and runs[0].state is not None and runs[0].state.is_final():
                raise AssertionError(f"{run_name} ended before pausing: {runs[0].state}")
            time.sleep(0.2)
    raise AssertionError(f"{run_name} did not pause within {timeout} s")


def read_run(run_id: uuid.UUID) -> FlowRun:
    """The flow run as the API has it now."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def authorize_link(business: str) -> str:
    """The authorize URL the run published as its link artifact."""
    artifact = Artifact.get(f"authorize-{business}", _sync=True)  # type: ignore[call-arg]
    assert isinstance(artifact, ArtifactResponse)
    data = artifact.data
    assert isinstance(data, str)
    start = data.index("(") + 1
    return data[start : data.rindex(")")]


def browse_callback(callback: CallbackServer, query: dict[str, str]) -> httpx.Response:
    """GET the callback URL with Nomi's redirect query, as the browser does."""
    return httpx.get(f"{callback.redirect_uri}?{urlencode(query)}", timeout=30)


def consent_at_nomi(
    business: str,
    tenant_id: str | None = None,
    *,
    email: str = ACCOUNTANT_EMAIL,
    password: str = ACCOUNTANT_PASSWORD,
    decision: str = "allow",
) -> dict[str, str]:
    """Complete Nomi's consent pages from the run's authorize link; returns the redirect query."""
    with httpx.Client(timeout=30) as browser:
        return complete_consent(
            browser,
            authorize_link(business),
            email=email,
            password=password,
            tenant_id=tenant_id,
            decision=decision,
        )


def consent_and_call_back(
    callback: CallbackServer, business: str, tenant_id: str, **login: str
) -> httpx.Response:
    """Consent at Nomi choosing ``tenant_id``, then hit the callback, which must answer 200."""
    page = browse_callback(callback, consent_at_nomi(business, tenant_id, **login))
    assert page.status_code == 200, page.text
    return page


def run_texts(run_id: uuid.UUID) -> str:
    """Everything a run shows ops: its logs, parameters, state message and artifacts."""
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}))
        run = client.read_flow_run(run_id)
        artifacts = client.read_artifacts()
    parts = [log.message for log in logs]
    parts.append(str(run.parameters))
    parts.append(str(run.state.message if run.state else ""))
    parts += [str(a.data) + str(a.description) for a in artifacts if a.flow_run_id == run_id]
    return "\n".join(parts)


def database_text(database_url: str) -> str:
    """Every row of every table of the connector database, as text."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                str(row)
                for table in inspect(engine).get_table_names()
                for row in conn.execute(text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


# --- the callback's own refusals (no flow involved) ---------------------------------------------


def test_callback_refuses_a_request_without_state_or_answer(callback: CallbackServer) -> None:
    for query in ({}, {"code": "abc"}, {"state": "abc"}):
        response = browse_callback(callback, query)
        assert response.status_code == 400
        assert "only accepts the answer Nomi sends back" in response.text
        assert "location" not in response.headers


def test_callback_refuses_a_forged_state_with_its_own_page(callback: CallbackServer) -> None:
    response = browse_callback(callback, {"code": "some-code", "state": "forged"})
    assert response.status_code == 400
    assert "Authorization refused" in response.text
    assert "unknown to the connector" in response.text
    assert "some-code" not in response.text
    assert "location" not in response.headers


def test_callback_health_answers(callback: CallbackServer) -> None:
    assert httpx.get(f"{callback.base_url}/healthz").json() == {"status": "ok"}
