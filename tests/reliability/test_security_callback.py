"""The OAuth callback under hostile requests: it never redirects anywhere and refuses bad states.

What tests/flows/test_connect_*.py already prove is not repeated here (a forged state while a run
waits, a replay after success, a late state after a timeout). This adds: no 3xx for any input
(hostile ``redirect``/``next`` parameters, header injection, a forged Host header, trailing-slash
and double-slash paths), a state past its ``expires_at``, a state a run already closed, and a
valid state whose run is gone (the parked code is deleted, the page is the callback's own), and
(issue 16) an ``error`` that is not an RFC 6749 code or comes with a code: refused, audited, the
state left unused; a state whose run timed out is refused as expired.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prefect.blocks.system import Secret
from sqlmodel import Session, select

from connector.connections.oauth_states import (
    OAuthPurpose,
    OAuthState,
    StateOutcome,
    close_state,
    hash_state,
    new_state,
    open_state,
)
from connector.store.history_tables import AuditLog
from tasks.consent import code_block_name
from tests.connector.factories import make_business
from tests.flows.conftest import connector_db, db_session_for
from tests.flows.connections.test_connect_support import CallbackServer, callback

__all__ = ["callback", "connector_db", "db_session_for"]

EVIL = "https://evil.example/steal"


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture
def open_states(db_session_for: Callable[[], Session]) -> Callable[..., str]:
    """Open a state for a (non-existent) waiting run; returns the raw state."""
    with db_session_for() as s:
        business_id = make_business(s).id

    def make(*, ttl: timedelta = timedelta(minutes=10), now: datetime | None = None) -> str:
        state = new_state()
        with db_session_for() as s:
            open_state(
                s,
                state_hash=hash_state(state),
                flow_run_id=uuid.uuid4(),
                business_id=business_id,
                purpose=OAuthPurpose.CONNECT,
                ttl=ttl,
                now=now,
            )
        return state

    return make


def _row(db_session_for: Callable[[], Session], state: str) -> OAuthState:
    with db_session_for() as s:
        return s.exec(select(OAuthState).where(OAuthState.state_hash == hash_state(state))).one()


def _refusals(db_session_for: Callable[[], Session]) -> list[AuditLog]:
    with db_session_for() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == "oauth_callback.refused")))


def _assert_own_page(response: httpx.Response) -> None:
    assert not response.is_redirect, (response.status_code, response.headers.get("location"))
    assert response.status_code < 300 or response.status_code >= 400
    assert "location" not in response.headers
    assert "refresh" not in response.headers
    assert "evil.example" not in response.headers.get("content-location", "")
    assert "<meta http-equiv" not in response.text.lower()


HOSTILE_REQUESTS: list[tuple[str, dict[str, str]]] = [
    (f"/oauth/callback?code=c&state=s&redirect={EVIL}&next={EVIL}", {}),
    (f"/oauth/callback?code=c&state={EVIL}&return_to=//evil.example", {}),
    ("/oauth/callback/?code=c&state=s", {}),
    ("/oauth/callback/?code=c&state=s", {"host": "evil.example"}),
    ("/healthz/", {"host": "evil.example"}),
    ("//evil.example/oauth/callback?code=c&state=s", {}),
    ("/oauth/callback?code=c&state=s%0d%0aLocation:%20https://evil.example", {}),
    ("/oauth/callback?error=x%0d%0aLocation:%20https://evil.example&state=s", {}),
    ("/oauth//callback?code=c&state=s", {}),
    ("/OAUTH/CALLBACK?code=c&state=s", {}),
    ("/docs", {}),
    ("/docs/oauth2-redirect?state=s&code=c", {}),
    ("/oauth/callback?" + "state=" + "s" * 20_000 + "&code=c", {}),
]


def test_no_request_is_ever_answered_with_a_redirect(
    callback: CallbackServer, browser: httpx.Client
) -> None:
    for path, headers in HOSTILE_REQUESTS:
        response = browser.get(callback.base_url + path, headers=headers)
        _assert_own_page(response)
        assert response.status_code in (400, 404, 405, 414, 431), (path, response.status_code)


def test_a_trailing_slash_with_a_forged_host_does_not_send_the_code_off_site(
    callback: CallbackServer, browser: httpx.Client
) -> None:
    response = browser.get(
        f"{callback.base_url}/oauth/callback/?code=the-code&state=s",
        headers={"host": "evil.example"},
    )
    assert response.status_code == 404
    assert "the-code" not in str(response.headers)


def test_a_state_past_its_expiry_is_refused_and_left_unused(
    callback: CallbackServer,
    browser: httpx.Client,
    open_states: Callable[..., str],
    db_session_for: Callable[[], Session],
) -> None:
    state = open_states(ttl=timedelta(minutes=10), now=datetime.now(UTC) - timedelta(minutes=11))
    response = browser.get(
        f"{callback.redirect_uri}", params={"state": state, "code": "c", "next": EVIL}
    )

    _assert_own_page(response)
    assert response.status_code == 400
    assert "expired" in response.text
    assert _row(db_session_for, state).used_at is None


def test_a_valid_state_with_a_hostile_redirect_gets_the_callbacks_own_page_and_no_code_is_kept(
    prefect_server: None,
    callback: CallbackServer,
    browser: httpx.Client,
    open_states: Callable[..., str],
    db_session_for: Callable[[], Session],
) -> None:
    state = open_states()
    query = {"state": state, "code": "code-for-nobody", "redirect": EVIL, "next": EVIL}
    response = browser.get(callback.redirect_uri, params=query)

    _assert_own_page(response)
    assert response.status_code == 409
    assert "no longer waiting" in response.text
    assert "code-for-nobody" not in response.text
    row = _row(db_session_for, state)
    with pytest.raises(ValueError, match="Unable to find block document"):
        Secret.load(code_block_name(row.flow_run_id), _sync=True)  # type: ignore[call-arg]

    replay = browser.get(callback.redirect_uri, params=query)
    _assert_own_page(replay)
    assert replay.status_code == 400
    assert "already used" in replay.text


@pytest.mark.parametrize(
    ("outcome", "said", "unsaid"),
    [
        (StateOutcome.FAILED, "already used", None),  # its run ended: no run reads a code now
        (StateOutcome.TIMED_OUT, "expired", "already used"),
    ],
)
def test_a_state_whose_run_ended_is_refused_as_used_or_if_it_timed_out_as_expired(
    callback: CallbackServer,
    browser: httpx.Client,
    open_states: Callable[..., str],
    db_session_for: Callable[[], Session],
    outcome: StateOutcome,
    said: str,
    unsaid: str | None,
) -> None:
    state = open_states()
    row_id = _row(db_session_for, state).id
    with db_session_for() as s:
        close_state(s, row_id, outcome=outcome)
    response = browser.get(callback.redirect_uri, params={"state": state, "code": "c"})

    _assert_own_page(response)
    assert response.status_code == 400
    assert said in response.text
    if unsaid is not None:
        assert unsaid not in response.text


HOSTILE_ERRORS = [
    "**Your account is locked.** [Unlock it here](https://evil.example/unlock)",
    '<script>alert("x")</script><a href="https://evil.example">continue</a>',
    "A" * 300,
    "Access_Denied",
    "access_denied ",
    "access_denied\nLocation: https://evil.example",
    "",
]


@pytest.mark.parametrize("error", HOSTILE_ERRORS)
def test_an_error_that_is_not_an_oauth_code_is_refused_audited_and_leaves_the_state_unused(
    callback: CallbackServer,
    browser: httpx.Client,
    open_states: Callable[..., str],
    db_session_for: Callable[[], Session],
    caplog: pytest.LogCaptureFixture,
    error: str,
) -> None:
    state = open_states()
    response = browser.get(callback.redirect_uri, params={"state": state, "error": error})

    _assert_own_page(response)
    assert response.status_code == 400
    assert "Not a valid Nomi answer" in response.text
    assert "not an OAuth 2.0 (RFC 6749) error code" in response.text
    for raw in ("<script", "<a href", "**Your", "[Unlock", "A" * 41):
        assert raw not in response.text
    row = _row(db_session_for, state)
    assert row.used_at is None
    assert row.outcome is None
    [refusal] = _refusals(db_session_for)
    assert refusal.allowed is False
    assert refusal.business_id == row.business_id
    assert refusal.detail["purpose"] == "connect"
    assert refusal.detail["flow_run_id"] == str(row.flow_run_id)
    assert "RFC 6749" in refusal.detail["reason"]
    kept = refusal.detail["error"]
    assert len(kept) <= 40
    assert set(kept) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-?")
    # What the connector logged; the test's own browser (httpx, httpcore) logs the URL it asked for.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    for raw in ("<script", "**Your", "A" * 41):
        assert raw not in logged


def test_an_invalid_error_with_an_unknown_state_is_refused_and_audited_without_a_business(
    callback: CallbackServer, browser: httpx.Client, db_session_for: Callable[[], Session]
) -> None:
    response = browser.get(
        callback.redirect_uri, params={"state": "forged", "error": "<b>pwned</b>"}
    )

    _assert_own_page(response)
    assert response.status_code == 400
    assert "<b>" not in response.text
    [refusal] = _refusals(db_session_for)
    assert refusal.business_id is None
    assert refusal.detail["error"] == "?b?pwned??b?"


def test_a_code_sent_beside_an_error_is_refused_and_the_state_stays_usable(
    prefect_server: None,
    callback: CallbackServer,
    browser: httpx.Client,
    open_states: Callable[..., str],
    db_session_for: Callable[[], Session],
) -> None:
    state = open_states()
    both = {"state": state, "code": "a-real-code", "error": "access_denied"}
    response = browser.get(callback.redirect_uri, params=both)

    _assert_own_page(response)
    assert response.status_code == 400
    assert "both an authorization code and an error" in response.text
    assert "a-real-code" not in response.text
    row = _row(db_session_for, state)
    assert row.used_at is None
    [refusal] = _refusals(db_session_for)
    assert refusal.business_id == row.business_id
    assert refusal.detail["error"] == "access_denied"
    with pytest.raises(ValueError, match="Unable to find block document"):
        Secret.load(code_block_name(row.flow_run_id), _sync=True)  # type: ignore[call-arg]

    # The state was not used up: the proper answer still goes through (its run is gone here).
    answer = browser.get(callback.redirect_uri, params={"state": state, "code": "a-real-code"})
    assert answer.status_code == 409
    assert "no longer waiting" in answer.text
