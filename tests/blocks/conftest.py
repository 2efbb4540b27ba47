"""Fixtures of the block tests: saved app and credentials blocks on the session Prefect server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from blocks import NomiApp, NomiCredentials


def make_app(base_url: str = "http://127.0.0.1:9") -> NomiApp:
    return NomiApp(
        client_id="nomi-connector-sandbox",
        client_secret=SecretStr("sandbox-client-secret"),
        authorize_url=f"{base_url}/oauth/authorize",
        token_url=f"{base_url}/oauth/token",
        revoke_url=f"{base_url}/oauth/revoke",
        api_base_url=base_url,
        redirect_uri="http://127.0.0.1:8000/callback",
    )


@pytest.fixture
def block_name(prefect_server: None) -> str:
    """A fresh credentials block name, saved with an already-expired access token."""
    name = f"conn-{uuid.uuid4().hex[:10]}"
    NomiCredentials(
        tenant_id="tenant-1",
        tenant_name="Bright Smile Dental Ltd",
        access_token=SecretStr("access-0"),
        refresh_token=SecretStr("refresh-0"),
        access_token_expires_at=datetime.now(UTC) - timedelta(seconds=5),
        scopes=["offline_access"],
    ).save(name)
    return name
