"""No token, client secret, authorization code or PKCE verifier appears in logs, errors or reprs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from nomi.client import NomiClient
from nomi.errors import ConnectionLostError, NomiError, RejectedError
from nomi.models import ContactCreate
from nomi.retry import RetryPolicy
from nomi.tokens import RefreshingTokenProvider
from tests.nomi.conftest import CLIENT_SECRET, consent, make_oauth

if TYPE_CHECKING:
    from sandbox.testing import SandboxHandle


def test_secrets_never_reach_logs_errors_or_reprs(
    sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    oauth = make_oauth(sandbox)
    tenant_id = sandbox.tenant_id("Bright Smile Dental Ltd")
    code, verifier = consent(sandbox, oauth, tenant_id)
    caplog.clear()  # the consent pages are the user's browser, not our code
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "nomi", "blocks"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    texts: list[str] = []
    tokens = oauth.exchange_code(code, verifier)
    provider = RefreshingTokenProvider(oauth, tokens)
    faults: list[dict[str, Any]] = [
        {"fault": "token_rejected", "method": "GET", "path": "/api/v1/users", "count": 1},
        {"fault": "server_error", "method": "GET", "path": "/api/v1/users", "count": 1},
        {"fault": "validation", "method": "POST", "path": "/api/v1/suppliers", "count": 1},
    ]
    for spec in faults:
        sandbox.fault(tenant_id=tenant_id, **spec)
    retry = RetryPolicy(base_delay=0.01)
    base_url = sandbox.base_url
    with NomiClient(base_url, tenant_id, provider, retry=retry) as nomi:
        nomi.list_users()
        with pytest.raises(RejectedError) as rejected:
            nomi.create_supplier(ContactCreate(name="X"), "key-1")
        texts += [str(rejected.value), repr(rejected.value), repr(nomi)]
    refreshed = provider.tokens
    texts += [repr(oauth), repr(provider), repr(tokens), repr(refreshed), str(tokens)]
    oauth.revoke(refreshed.refresh_token)  # type: ignore[arg-type]
    for rejected_token in (tokens.refresh_token, refreshed.refresh_token):
        with pytest.raises(ConnectionLostError) as lost:
            oauth.refresh(rejected_token)  # type: ignore[arg-type]
        texts += [str(lost.value), repr(lost.value)]
    with pytest.raises(NomiError) as reused:
        oauth.exchange_code(code, verifier)
    texts += [str(reused.value)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]

    secrets = {
        "client secret": CLIENT_SECRET,
        "code": code,
        "verifier": verifier,
        "access token": tokens.access_token.get_secret_value(),
        "refresh token": tokens.refresh_token.get_secret_value(),  # type: ignore[union-attr]
        "refreshed access token": refreshed.access_token.get_secret_value(),
        "refreshed refresh token": refreshed.refresh_token.get_secret_value(),  # type: ignore[union-attr]
    }
    assert refreshed.access_token != tokens.access_token
    assert any("HTTP Request" in t for t in texts)  # httpx did log, at INFO
    leaks = {name for name, value in secrets.items() for text in texts if value in text}
    assert leaks == set()
    oauth.close()
