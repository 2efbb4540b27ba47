"""Fixtures for the sandbox tests: a running sandbox, a connected token set, an API client."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from sandbox.auth.tokens import CLIENT_ID, CLIENT_SECRET, SCOPES, s256
from sandbox.browser import complete_consent
from sandbox.seed import BRIGHT_SMILE, HARBOUR, NORTHWIND, OSTSEE, PENNINE, tenant_id
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox

OWNER = ("owner@brightsmile.example", "brightsmile-owner")
ACCOUNTANT = ("accountant@ledgerline.example", "ledgerline-accountant")
REDIRECT = "http://127.0.0.1:8400/callback"
BSD, HCC, NWJ = tenant_id(BRIGHT_SMILE), tenant_id(HARBOUR), tenant_id(NORTHWIND)
OSY, PPL = tenant_id(OSTSEE), tenant_id(PENNINE)
UNLIMITED = {
    "per_minute": 0,
    "per_day": 0,
    "concurrent": 0,
    "app_per_minute": 0,
    "token_per_minute": 0,
}


def authorize_url(
    sb: SandboxHandle, verifier: str, scopes: tuple[str, ...] = SCOPES, state: str = "st-1"
) -> str:
    """An authorization URL for the seeded client."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{sb.authorize_url}?{query}"


def get_code(
    sb: SandboxHandle,
    *,
    login: tuple[str, str] = OWNER,
    tenant: str | None = None,
    scopes: tuple[str, ...] = SCOPES,
) -> tuple[str, str]:
    """Complete the consent pages; return (code, verifier)."""
    verifier = secrets.token_urlsafe(48)
    with httpx.Client() as http:
        query = complete_consent(
            http,
            authorize_url(sb, verifier, scopes),
            email=login[0],
            password=login[1],
            tenant_id=tenant,
        )
    return query["code"], verifier


def token_request(sb: SandboxHandle, **data: str) -> httpx.Response:
    """POST the token endpoint with client_secret_basic."""
    return httpx.post(sb.token_url, data=data, auth=(CLIENT_ID, CLIENT_SECRET))


def exchange(sb: SandboxHandle, code: str, verifier: str) -> httpx.Response:
    """Trade a code for tokens."""
    return token_request(
        sb,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )


def refresh(sb: SandboxHandle, refresh_token: str) -> httpx.Response:
    """Rotate a refresh token."""
    return token_request(sb, grant_type="refresh_token", refresh_token=refresh_token)


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    """A test-mode sandbox with the demo seed and no rate limits."""
    with running_sandbox(SandboxSettings(test_mode=True, **UNLIMITED)) as sb:
        yield sb


@pytest.fixture
def connect(sandbox: SandboxHandle) -> Callable[..., dict[str, Any]]:
    """Complete a consent and return the token response."""

    def _connect(
        login: tuple[str, str] = OWNER, tenant: str | None = None, scopes: tuple[str, ...] = SCOPES
    ) -> dict[str, Any]:
        code, verifier = get_code(sandbox, login=login, tenant=tenant, scopes=scopes)
        response = exchange(sandbox, code, verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return _connect


@pytest.fixture
def api_for(sandbox: SandboxHandle) -> Iterator[Callable[..., httpx.Client]]:
    """Make API clients (bearer token + tenant header) that are closed afterwards."""
    clients: list[httpx.Client] = []

    def _make(access_token: str, tenant: str = BSD) -> httpx.Client:
        client = httpx.Client(
            base_url=sandbox.api_url,
            timeout=30,
            headers={"Authorization": f"Bearer {access_token}", "Nomi-Tenant-Id": tenant},
        )
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()


@pytest.fixture
def api(
    connect: Callable[..., dict[str, Any]], api_for: Callable[..., httpx.Client]
) -> httpx.Client:
    """An API client for the owner connected to Bright Smile Dental."""
    return api_for(connect()["access_token"], BSD)


def ids(client: httpx.Client, path: str, **where: str) -> dict[str, str]:
    """Map a list's codes or names to ids (archived included)."""
    items = client.get(path, params={"include_archived": "true", "page_size": 1000}).json()["items"]
    key = "code" if "code" in items[0] else "name"
    return {
        item[key]: item["id"] for item in items if all(item.get(k) == v for k, v in where.items())
    }
