"""Flow-test fixtures: a Prefect test server, the sandbox, a NomiApp block, connected businesses.

A "connected business" is made the way the connect flow makes one (consent through the sandbox's
HTML forms, code exchange with PKCE, a credentials block, a connected row) but without the flow, so
tests of sync and publish do not depend on the connect flow.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlmodel import Session

from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from sandbox.browser import complete_consent
from sandbox.seed import BRIGHT_SMILE, LOGINS
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.connector.factories import (
    make_business,
    make_connection,
    make_membership,
    make_user,
)

OWNER_EMAIL, OWNER_PASSWORD = LOGINS[0][0], LOGINS[0][1]
ACCOUNTANT_EMAIL, ACCOUNTANT_PASSWORD = LOGINS[1][0], LOGINS[1][1]


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    """A sandbox in test mode with Nomi's default limits, fresh for each test."""
    with running_sandbox(SandboxSettings(test_mode=True)) as handle:
        yield handle


@pytest.fixture
def connector_db(tmp_path: Path) -> str:
    """A migrated connector database (a SQLite file) for one test; returns its URL."""
    url = f"sqlite:///{tmp_path}/connector.db"
    migrate(make_engine(url))
    return url


@pytest.fixture
def db_session_for(connector_db: str) -> Callable[[], Session]:
    """Open sessions on the test's connector database (``with db_session_for() as s: ...``)."""
    engine = make_engine(connector_db)
    return lambda: db_session(engine)  # type: ignore[return-value]


@pytest.fixture
def fast_world(sandbox: SandboxHandle, connector_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flows read this test's database; no per-minute limit; fresh client throttles."""
    import nomi.throttle

    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    monkeypatch.setattr(nomi.throttle, "_registry", nomi.throttle.ThrottleRegistry())
    sandbox.admin.patch("/settings", json={"per_minute": 0}).raise_for_status()


def save_nomi_app(
    sandbox: SandboxHandle,
    *,
    prefix: str = "nomi-test",
    redirect_uri: str = "http://127.0.0.1:8799/oauth/callback",
) -> str:
    """Save a `NomiApp` block pointing at the sandbox; returns its name."""
    from blocks.app import NomiApp

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    NomiApp(
        client_id="nomi-connector-sandbox",
        client_secret="sandbox-client-secret",
        authorize_url=sandbox.authorize_url,
        token_url=sandbox.token_url,
        revoke_url=sandbox.revoke_url,
        api_base_url=sandbox.base_url,
        redirect_uri=redirect_uri,
    ).save(name)
    return name


@pytest.fixture
def nomi_app(prefect_server: None, sandbox: SandboxHandle) -> str:
    """A saved `NomiApp` block pointing at the sandbox; returns its name."""
    return save_nomi_app(sandbox)


@dataclass
class ConnectedBusiness:
    """A business with an admin, connected to a sandbox organisation."""

    slug: str
    business_id: uuid.UUID
    connection_id: uuid.UUID
    admin_user_id: uuid.UUID
    admin_email: str
    tenant_id: str
    credentials_block: str


@pytest.fixture
def connect_business(
    nomi_app: str, sandbox: SandboxHandle, connector_db: str
) -> Callable[..., ConnectedBusiness]:
    """Make a business and connect it to a sandbox organisation (default: Bright Smile)."""
    from blocks.app import NomiApp
    from blocks.credentials import NomiCredentials

    app = cast(NomiApp, NomiApp.load(nomi_app))
    engine = make_engine(connector_db)

    def connect(
        organisation: str = BRIGHT_SMILE,
        *,
        email: str = ACCOUNTANT_EMAIL,
        password: str = ACCOUNTANT_PASSWORD,
        **settings: object,
    ) -> ConnectedBusiness:
        tenant_id = sandbox.tenant_id(organisation)
        with app.oauth() as oauth, httpx.Client(timeout=30) as browser:
            verifier, _ = oauth.new_pkce()
            state = oauth.new_state()
            answer = complete_consent(
                browser,
                oauth.authorization_url(state, verifier),
                email=email,
                password=password,
                tenant_id=tenant_id,
            )
            assert answer["state"] == state
            tokens = oauth.exchange_code(answer["code"], verifier)
        with db_session(engine) as s:
            business = make_business(s)
            admin = make_user(s)
            make_membership(s, user=admin, business=business, role=Role.ADMIN)
            block = f"nomi-credentials-{business.slug}-{uuid.uuid4().hex[:6]}"
            connection = make_connection(
                s,
                business=business,
                nomi_tenant_id=tenant_id,
                organisation_name=organisation,
                status=ConnectionStatus.CONNECTED,
                scopes=tokens.scopes,
                credentials_block_name=block,
                consent_expires_at=datetime.now(UTC) + timedelta(days=365),
            )
            from sqlmodel import select

            from connector.store.models import ConnectionSettings

            row = s.exec(
                select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
            ).one()
            for key, value in settings.items():
                setattr(row, key, value)
            result = ConnectedBusiness(
                slug=business.slug,
                business_id=business.id,
                connection_id=connection.id,
                admin_user_id=admin.id,
                admin_email=admin.email,
                tenant_id=tenant_id,
                credentials_block=block,
            )
        from nomi.models import Organisation

        NomiCredentials.from_tokens(
            tokens,
            Organisation(tenant_id=tenant_id, tenant_name=organisation),
            consent_expires_at=datetime.now(UTC) + timedelta(days=365),
        ).save(block)
        return result

    return connect
