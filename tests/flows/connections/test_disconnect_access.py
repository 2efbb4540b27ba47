"""Who may run disconnect-from-nomi (admins and accountants, every refusal audited), and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from blocks.credentials import NomiCredentials
from connector.admin.cli import app as cli
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.db import make_engine
from connector.store.models import Business
from flows.disconnect_from_nomi import DisconnectParams, disconnect_from_nomi
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.connector.factories import make_membership, make_user
from tests.flows.conftest import ConnectedBusiness
from tests.flows.connections.test_disconnect_flow import (
    _audit,
    _connection,
    _nomi_takes,
    _saved_tokens,
)

pytestmark = pytest.mark.usefixtures("fast_world")


@pytest.fixture
def business(connect_business: Callable[..., ConnectedBusiness]) -> ConnectedBusiness:
    """Bright Smile, connected, with its admin."""
    return connect_business(BRIGHT_SMILE)


def test_only_admins_and_accountants_may_disconnect_and_every_refusal_is_audited(
    business: ConnectedBusiness, nomi_app: str, connector_db: str, sandbox: SandboxHandle
) -> None:
    with Session(make_engine(connector_db)) as s:
        clerk = make_user(s)
        make_membership(
            s, user=clerk, business=s.get_one(Business, business.business_id), role=Role.STANDARD
        )
        clerk_email = clerk.email
        s.commit()

    def attempt(email: str) -> Any:
        return disconnect_from_nomi(
            DisconnectParams(business=business.slug, acting_user=email, app_block=nomi_app),
            return_state=True,
        )

    standard = attempt(clerk_email)
    stranger = attempt("nobody@example.test")

    assert standard.is_failed()
    assert "PermissionDeniedError" in (standard.message or "")
    assert "'standard'" in (standard.message or "")
    assert stranger.is_failed()
    assert "no such user" in (stranger.message or "")
    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.credentials_block_name == business.credentials_block
    assert _nomi_takes(sandbox, _saved_tokens(business.credentials_block), business.tenant_id)
    refusals = _audit(connector_db, business.business_id)
    assert [(a.action, a.allowed) for a in refusals] == [
        ("disconnect", False),
        ("disconnect", False),
    ]
    assert refusals[0].actor_user_id is not None
    assert refusals[1].detail["email"] == "nobody@example.test"


def test_the_cli_disconnects_for_an_admin_and_says_why_it_refuses(
    business: ConnectedBusiness,
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    tokens = _saved_tokens(business.credentials_block)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(
            cli,
            ["--home", str(tmp_path / "home"), "--database-url", connector_db, *args],
        )

    refused = invoke(
        "connection",
        "disconnect",
        business.slug,
        "--actor",
        "x@example.test",
        "--app-block",
        nomi_app,
    )
    assert refused.exit_code == 1
    assert "no such user" in refused.output
    assert _connection(connector_db, business.connection_id).status == ConnectionStatus.CONNECTED

    done = invoke(
        "connection",
        "disconnect",
        business.slug,
        "--actor",
        f"  {business.admin_email.upper()} ",  # as people type it
        "--app-block",
        nomi_app,
    )

    assert done.exit_code == 0, done.output
    assert f"{business.slug} disconnected from {BRIGHT_SMILE}" in done.output
    assert _connection(connector_db, business.connection_id).status == (
        ConnectionStatus.DISCONNECTED
    )
    with pytest.raises(ValueError):
        NomiCredentials.load(business.credentials_block)
    assert not _nomi_takes(sandbox, tokens, business.tenant_id)
