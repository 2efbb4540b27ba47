"""The callback never loses a consent, and shows Nomi's error text only cut and escaped (issue 16).

A connect run waits for consent; the person completes Nomi's pages; the callback's requests to the
Prefect API then fail with ``httpx.ConnectError`` (as when Prefect is unreachable for a moment) by
a fault put into ``httpx.Client.send`` for the requests the callback app makes (marked through a
context variable its requests carry into the worker thread). The callback tries again with
backoff; when Prefect stays down it answers its own 503 page, leaves the state unused, and the
same link then works once Prefect is back: the run connects.
"""

from __future__ import annotations

import html
import threading
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlmodel import Session, select
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.connections.oauth_states import OAuthState, StateOutcome
from connector.rules.vocabulary import ConnectionStatus
from connector.settings import ConnectorSettings
from connector.store.history_tables import AuditLog
from connector.store.models import Connection
from deployments.callback import PrefectRetry, create_callback_app
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.flows.connections.test_connect_support import (
    OWNER,
    CallbackServer,
    Member,
    app_block,
    authorize_link,
    browse_callback,
    consent_at_nomi,
    database_text,
    make_member,
    read_run,
    run_texts,
    serve_callback,
    start_paused,
)

__all__ = ["app_block", "make_member"]

FAST_RETRY = PrefectRetry(attempts=4, first_delay=0.05, max_delay=0.1, budget_seconds=5)

_IN_CALLBACK: ContextVar[bool] = ContextVar("in_callback", default=False)


class _MarkCallbackRequests:
    """ASGI middleware: code run for a callback request sees ``_IN_CALLBACK`` set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _IN_CALLBACK.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _IN_CALLBACK.reset(token)


@dataclass
class PrefectOutage:
    """Makes the callback's requests to the Prefect API fail with ``httpx.ConnectError``."""

    api_url: str
    down: bool = False  # every request fails
    failures_left: int = 0  # this many more requests fail
    only_path: str | None = None  # only requests whose path holds this fail
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, request: httpx.Request) -> bool:
        """Whether this request fails now (counts it)."""
        if not _IN_CALLBACK.get() or not str(request.url).startswith(self.api_url):
            return False
        if self.only_path is not None and self.only_path not in request.url.path:
            return False
        with self.lock:
            if not self.down and self.failures_left <= 0:
                return False
            self.failures_left -= 1
            self.failed.append(f"{request.method} {request.url.path}")
            return True


@pytest.fixture
def outage(prefect_server: None, monkeypatch: pytest.MonkeyPatch) -> PrefectOutage:
    """A switchable Prefect outage seen by the callback only (the run and the test see Prefect)."""
    api_url = PREFECT_API_URL.value()
    assert api_url
    fault = PrefectOutage(api_url=api_url)
    real_send = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        if fault.hits(request):
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return real_send(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    return fault


@pytest.fixture
def callback(connector_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CallbackServer]:
    """The callback app (quick retries) whose requests the outage can tell apart."""
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    app = create_callback_app(
        ConnectorSettings(database_url=connector_db), prefect_retry=FAST_RETRY
    )
    app.add_middleware(_MarkCallbackRequests)
    with serve_callback(app) as server:
        yield server


def _state_row(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> OAuthState:
    with db_session_for() as s:
        return s.exec(select(OAuthState).where(OAuthState.business_id == business_id)).one()


def _connection(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> Connection:
    with db_session_for() as s:
        connection = s.exec(select(Connection).where(Connection.business_id == business_id)).one()
    return connection


def test_the_callback_retries_an_unreachable_prefect_and_the_run_connects(
    outage: PrefectOutage,
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    run, _ = start_paused("connect", app_block, member.slug, member.email)
    answer = consent_at_nomi(member.slug, sandbox.tenant_id(BRIGHT_SMILE), **OWNER)

    outage.failures_left = 3  # fewer than the callback's tries
    page = browse_callback(callback, answer)

    assert len(outage.failed) == 3
    assert page.status_code == 200, page.text
    assert "authorization received" in page.text
    final = run.join()
    assert final.is_completed(), final.message
    connection = _connection(db_session_for, member.business_id)
    assert connection.status == ConnectionStatus.CONNECTED
    assert _state_row(db_session_for, member.business_id).outcome == StateOutcome.CONNECTED


def test_with_prefect_down_the_person_is_asked_to_reload_and_the_same_link_then_connects(
    outage: PrefectOutage,
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
    connector_db: str,
) -> None:
    member = make_member()
    run, paused = start_paused("connect", app_block, member.slug, member.email)
    answer = consent_at_nomi(member.slug, sandbox.tenant_id(BRIGHT_SMILE), **OWNER)

    # Prefect unreachable: the code cannot be parked. The state stays unused.
    outage.down = True
    first = browse_callback(callback, answer)
    assert first.status_code == 503
    assert "reload this page" in first.text
    assert first.headers["retry-after"] == "30"
    assert "location" not in first.headers
    assert answer["code"] not in first.text
    assert len(outage.failed) == FAST_RETRY.attempts
    assert _state_row(db_session_for, member.business_id).used_at is None

    # Prefect back for parking, still failing to resume: the claimed state is given back.
    outage.down, outage.only_path = True, "/resume"
    outage.failed.clear()
    second = browse_callback(callback, answer)
    assert second.status_code == 503
    assert outage.failed
    assert all(f.endswith("/resume") for f in outage.failed)
    assert _state_row(db_session_for, member.business_id).used_at is None
    state = read_run(paused.id).state
    assert state is not None
    assert state.is_paused()

    # Prefect back: the same link (a reload) finishes the connection.
    outage.down = False
    reload = browse_callback(callback, answer)
    assert reload.status_code == 200, reload.text
    assert "authorization received" in reload.text
    final = run.join()
    assert final.is_completed(), final.message
    assert _connection(db_session_for, member.business_id).status == ConnectionStatus.CONNECTED
    closed = _state_row(db_session_for, member.business_id)
    assert closed.outcome == StateOutcome.CONNECTED
    assert answer["code"] not in database_text(connector_db)
    assert answer["code"] not in run_texts(paused.id)

    replay = browse_callback(callback, answer)
    assert replay.status_code == 400
    assert "already used" in replay.text


HOSTILE_DESCRIPTION = (
    '<img src=x onerror="alert(1)"> **Call us now** [support](https://evil.example/help) '
    + "z" * 400
)


def test_nomis_error_description_is_cut_and_escaped_and_never_reaches_the_run(
    prefect_server: None,
    app_block: str,
    callback: CallbackServer,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
    connector_db: str,
) -> None:
    member = make_member()
    run, paused = start_paused("connect", app_block, member.slug, member.email)
    [state] = parse_qs(urlsplit(authorize_link(member.slug)).query)["state"]

    page = browse_callback(
        callback,
        {"state": state, "error": "server_error", "error_description": HOSTILE_DESCRIPTION},
    )

    assert page.status_code == 200
    assert "server_error" in page.text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page.text
    assert "<img" not in page.text
    assert html.escape(HOSTILE_DESCRIPTION[:200]) in page.text  # cut to 200 characters
    assert html.escape(HOSTILE_DESCRIPTION[:201]) not in page.text
    final = run.join()
    assert final.is_failed()
    assert final.message is not None
    assert "Nomi refused the authorization: server_error" in final.message
    with db_session_for() as s:
        audit = s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id)).all()
    assert any(a.action == "connect.failed" for a in audit)
    shown = run_texts(paused.id) + "\n" + database_text(connector_db)
    for raw in ("<img", "onerror", "**Call us now**", "evil.example", "zzzz"):
        assert raw not in shown
