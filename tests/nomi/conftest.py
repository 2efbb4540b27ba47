"""Fixtures of the client tests: a sandbox over real HTTP and an organisation connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from nomi.client import NomiClient
from nomi.models import TokenSet
from nomi.oauth import NomiOAuth
from nomi.retry import RetryPolicy
from nomi.tokens import RefreshingTokenProvider

if TYPE_CHECKING:
    from sandbox.testing import SandboxHandle

CLIENT_ID = "nomi-connector-sandbox"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
OWNER = ("owner@brightsmile.example", "brightsmile-owner")
ORG = "Bright Smile Dental Ltd"
FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.2, max_retry_after=5.0)


@dataclass
class Connected:
    """An organisation connected through the consent pages."""

    sandbox: SandboxHandle
    oauth: NomiOAuth
    tokens: TokenSet
    tenant_id: str
    code: str
    verifier: str

    def client(self, **kwargs: Any) -> NomiClient:
        """A client for the organisation with a refreshing in-memory token provider."""
        provider = RefreshingTokenProvider(self.oauth, self.tokens)
        kwargs.setdefault("retry", FAST)
        return NomiClient(self.sandbox.base_url, self.tenant_id, provider, **kwargs)


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    """A fresh sandbox in test mode with its rate limits off (tests switch on what they need)."""
    from sandbox.settings import SandboxSettings
    from sandbox.testing import running_sandbox

    settings = SandboxSettings(test_mode=True, per_minute=0, concurrent=0, token_per_minute=0)
    with running_sandbox(settings) as handle:
        yield handle


def make_oauth(sandbox: SandboxHandle) -> NomiOAuth:
    return NomiOAuth(
        CLIENT_ID,
        CLIENT_SECRET,
        sandbox.authorize_url,
        sandbox.token_url,
        sandbox.revoke_url,
        REDIRECT_URI,
    )


def consent(sandbox: SandboxHandle, oauth: NomiOAuth, tenant_id: str) -> tuple[str, str]:
    """Walk the consent pages as the owner; returns (code, verifier)."""
    from sandbox.browser import complete_consent

    verifier, _ = oauth.new_pkce()
    state = oauth.new_state()
    with httpx.Client(follow_redirects=False) as browser:
        query = complete_consent(
            browser,
            oauth.authorization_url(state, verifier),
            email=OWNER[0],
            password=OWNER[1],
            tenant_id=tenant_id,
        )
    assert query["state"] == state
    return query["code"], verifier


@pytest.fixture
def connected(sandbox: SandboxHandle) -> Iterator[Connected]:
    """Bright Smile connected: tokens exchanged from a real authorization code."""
    oauth = make_oauth(sandbox)
    tenant_id = sandbox.tenant_id(ORG)
    code, verifier = consent(sandbox, oauth, tenant_id)
    tokens = oauth.exchange_code(code, verifier)
    yield Connected(sandbox, oauth, tokens, tenant_id, code, verifier)
    oauth.close()
