"""Eight consents reach the callback at once while publishing commits: none gets a 500 (issue 16).

The callback reads a state and then marks it used. In a read (deferred) SQLite transaction that
write fails at once with "database is locked" when another connection committed after the read
began, which publishing does all the time; the callback therefore claims the state in a write
transaction (``session(engine, write=True)``).

Eight browser threads hit the callback at the same moment while a writer thread on an engine of
its own (as a publishing worker process has) commits short write transactions:

* fast: Prefect is replaced by recorders (the database is what is under test): eight 200 pages,
  eight codes parked and eight runs resumed, each with its own;
* slow: eight small flows each open a state and wait for it with the connect flows' own
  ``wait_for_consent``, on the Prefect test server. No 500 (at most the callback's 503 "reload"
  page while the Prefect test server is overloaded, and then the reload works), and each run
  gets its own code.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel
from sqlmodel import Session, select

import deployments.callback_handover as handover_module
from connector.connections.oauth_states import (
    OAuthPurpose,
    OAuthState,
    hash_state,
    new_state,
    open_state,
)
from connector.history.records import record_audit
from connector.store.db import make_engine, session
from tasks.consent import code_block_name, wait_for_consent
from tests.connector.factories import make_business
from tests.flows.conftest import connector_db, db_session_for
from tests.flows.connections.test_connect_support import (
    CallbackServer,
    callback,
    start_flow,
    wait_until_paused,
)

__all__ = ["callback", "connector_db", "db_session_for"]

CONSENTS = 8


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@contextmanager
def publishing_commits(database_url: str, business_id: uuid.UUID) -> Iterator[list[int]]:
    """A publishing-like writer on an engine of its own, committing short write transactions."""
    stop = threading.Event()
    commits = [0]

    def publish() -> None:
        engine = make_engine(database_url)
        try:
            while not stop.is_set():
                with session(engine, write=True) as s:
                    record_audit(
                        s,
                        action="publish.attempt",
                        allowed=True,
                        business_id=business_id,
                        user_id=None,
                        detail={"n": commits[0]},
                    )
                commits[0] += 1
                time.sleep(0.001)  # let the other threads of this process run
        finally:
            engine.dispose()

    writer = threading.Thread(target=publish, daemon=True)
    writer.start()
    try:
        while commits[0] < 20:  # busy before the browsers arrive
            time.sleep(0.005)
        yield commits
    finally:
        stop.set()
        writer.join(timeout=30)


def browse_at_once(
    callback: CallbackServer, queries: dict[str, dict[str, str]], *, reloads: list[str]
) -> dict[str, httpx.Response]:
    """GET the callback for every query at the same moment; reload a 503 page as a person would."""
    pages: dict[str, httpx.Response] = {}
    barrier = threading.Barrier(len(queries))

    def browse(tag: str) -> None:
        barrier.wait()
        pages[tag] = page = httpx.get(callback.redirect_uri, params=queries[tag], timeout=60)
        for _ in range(10):
            if page.status_code != 503:
                break
            reloads.append(tag)
            time.sleep(1)
            pages[tag] = page = httpx.get(callback.redirect_uri, params=queries[tag], timeout=60)

    browsers = [threading.Thread(target=browse, args=(tag,)) for tag in queries]
    for b in browsers:
        b.start()
    for b in browsers:
        b.join(timeout=120)
    return pages


def _statuses(pages: dict[str, httpx.Response]) -> dict[str, int]:
    return {tag: page.status_code for tag, page in pages.items()}


@dataclass
class FakePrefect:
    """What the callback asked of Prefect: parked codes by block name, resumed runs."""

    parked: dict[str, str] = field(default_factory=dict)
    resumed: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)


@pytest.fixture
def fake_prefect(monkeypatch: pytest.MonkeyPatch) -> FakePrefect:
    """Replace the callback's two Prefect calls (park the code, resume the run) by recorders."""
    fake = FakePrefect()

    class RecordingSecret:
        def __init__(self, value: str) -> None:
            self.value = value

        def save(self, name: str, **_kwargs: Any) -> None:
            fake.parked[name] = self.value

    def resume(run_id: uuid.UUID, run_input: dict[str, str], **_kwargs: Any) -> None:
        fake.resumed[run_id] = run_input

    monkeypatch.setattr(handover_module, "Secret", RecordingSecret)
    monkeypatch.setattr(handover_module, "resume_flow_run", resume)
    return fake


def test_eight_consents_at_once_while_publishing_commits_get_no_500(
    callback: CallbackServer,
    connector_db: str,
    db_session_for: Callable[[], Session],
    fake_prefect: FakePrefect,
) -> None:
    with db_session_for() as s:
        business_id = make_business(s).id
    runs = {uuid.uuid4().hex[:8]: uuid.uuid4() for _ in range(CONSENTS)}
    states = {tag: new_state() for tag in runs}
    with db_session_for() as s:
        for tag, run_id in runs.items():
            open_state(
                s,
                state_hash=hash_state(states[tag]),
                flow_run_id=run_id,
                business_id=business_id,
                purpose=OAuthPurpose.CONNECT,
                ttl=timedelta(minutes=5),
            )
    queries = {tag: {"state": states[tag], "code": f"code-{tag}"} for tag in runs}

    reloads: list[str] = []
    with publishing_commits(connector_db, business_id) as commits:
        pages = browse_at_once(callback, queries, reloads=reloads)

    assert _statuses(pages) == dict.fromkeys(runs, 200), {
        tag: page.text[:300] for tag, page in pages.items() if page.status_code != 200
    }
    assert reloads == []
    assert fake_prefect.parked == {code_block_name(runs[t]): f"code-{t}" for t in runs}
    assert fake_prefect.resumed == {runs[t]: {"state": states[t]} for t in runs}
    with db_session_for() as s:
        rows = s.exec(select(OAuthState)).all()
    assert len(rows) == CONSENTS
    assert all(row.used_at is not None for row in rows)
    assert commits[0] > 20


class WaiterParams(BaseModel):
    """One waiting run: its database, business, state (a test value) and a name tag."""

    database_url: str
    business_id: uuid.UUID
    state: str
    tag: str


@flow(flow_run_name="consent-waiter-{params.tag}", persist_result=False)
def consent_waiter(params: WaiterParams) -> str:
    """Open a state for this run and wait for the callback like connect; return the code's hash."""
    run_id = uuid.UUID(str(flow_run.id))
    engine = make_engine(params.database_url)
    with session(engine, write=True) as s:
        open_state(
            s,
            state_hash=hash_state(params.state),
            flow_run_id=run_id,
            business_id=params.business_id,
            purpose=OAuthPurpose.CONNECT,
            ttl=timedelta(minutes=5),
        )
    engine.dispose()
    consent = wait_for_consent(
        authorize_url="http://127.0.0.1:1/oauth/authorize",
        business=f"waiter-{params.tag}",
        state=params.state,
        flow_run_id=run_id,
        timeout_seconds=120,
    )
    assert consent.code is not None
    return _digest(consent.code.get_secret_value())


@pytest.mark.slow
def test_eight_paused_runs_get_their_consents_at_once_while_publishing_commits(
    prefect_server: None,
    callback: CallbackServer,
    connector_db: str,
    db_session_for: Callable[[], Session],
) -> None:
    with db_session_for() as s:
        business_id = make_business(s).id
    tags = [uuid.uuid4().hex[:8] for _ in range(CONSENTS)]
    states = {tag: new_state() for tag in tags}
    codes = {tag: f"code-{uuid.uuid4().hex}" for tag in tags}
    runs = {
        tag: start_flow(
            consent_waiter,
            WaiterParams(
                database_url=connector_db, business_id=business_id, state=states[tag], tag=tag
            ),
        )
        for tag in tags
    }
    for tag in tags:
        wait_until_paused(f"consent-waiter-{tag}")
    queries = {tag: {"state": states[tag], "code": codes[tag]} for tag in tags}

    # The Prefect test server (SQLite) may answer 503 under this load for longer than the
    # callback waits: the person is then asked to reload, and reloading must work.
    reloads: list[str] = []
    with publishing_commits(connector_db, business_id) as commits:
        pages = browse_at_once(callback, queries, reloads=reloads)

    assert _statuses(pages) == dict.fromkeys(tags, 200), {
        tag: page.text[:300] for tag, page in pages.items() if page.status_code != 200
    }
    for tag in tags:
        final = runs[tag].join(timeout=60)
        assert final.is_completed(), final.message
        assert final.result() == _digest(codes[tag])
    assert commits[0] > 20
    assert len(reloads) < 2 * CONSENTS, reloads
