"""Fixtures of the ops flow tests: a business with its admin, a standard member and an outsider.

``ops_business`` is a business in the database only (no Nomi connection: enough for who-may
refusals, members, payment methods without a bank account, imports); ``synced_business`` is
connected to a sandbox organisation and has its lists mirrored by the sync flow, for everything
named by code or name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State
from sqlmodel import Session

from connector.rules.vocabulary import Role
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from sandbox.seed import BRIGHT_SMILE
from tests.connector.factories import make_business, make_membership, make_user
from tests.flows.conftest import ConnectedBusiness


@dataclass(frozen=True)
class OpsBusiness:
    """A business and the people the ops forms name."""

    slug: str
    business_id: uuid.UUID
    admin: str
    member: str
    outsider: str
    home: Path


@pytest.fixture
def ops_home(tmp_path: Path, connector_db: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The connector's home for the flows (inbox, images) and this test's database."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NOMI_CONNECTOR_HOME", str(home))
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    return home


def _people(session: Session, business: Any, admin_email: str | None = None) -> dict[str, str]:
    """A standard member and an outsider for the business (and an admin unless given)."""
    if admin_email is None:
        admin = make_user(session)
        make_membership(session, user=admin, business=business, role=Role.ADMIN)
        admin_email = admin.email
    member = make_user(session)
    make_membership(session, user=member, business=business, role=Role.STANDARD)
    outsider = make_user(session)
    return {"admin": admin_email, "member": member.email, "outsider": outsider.email}


@pytest.fixture
def ops_business(
    prefect_server: None, ops_home: Path, db_session_for: Callable[[], Session]
) -> OpsBusiness:
    """A business with an admin, a standard member and an outsider, never connected."""
    with db_session_for() as s:
        business = make_business(s)
        people = _people(s, business)
        slug, business_id = business.slug, business.id
        s.commit()
    return OpsBusiness(slug=slug, business_id=business_id, home=ops_home, **people)


@pytest.fixture
def synced_business(
    ops_home: Path,
    fast_world: None,
    nomi_app: str,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> OpsBusiness:
    """Bright Smile connected, its five lists mirrored by the sync flow, with its people."""
    connected = connect_business(BRIGHT_SMILE, warn_new_supplier=False)
    synced = sync_nomi_reference_data(
        SyncParams(business=connected.slug, mode="full", app_block=nomi_app)
    )
    assert synced["businesses"][0]["status"] != "failed", synced
    with db_session_for() as s:
        from connector.store.models import Business

        business = s.get(Business, connected.business_id)
        people = _people(s, business, connected.admin_email)
        s.commit()
    return OpsBusiness(
        slug=connected.slug, business_id=connected.business_id, home=ops_home, **people
    )


def refusal(state: State[Any]) -> str:
    """The one line a refused run failed with, after checking nothing was retried."""
    assert state.is_failed(), state
    message = state.message or ""
    assert "\n" not in message
    assert message.startswith("Flow run encountered an exception: ActionRefusedError: "), message
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    assert run.run_count == 1
    assert all(t.run_count <= 1 for t in task_runs), [(t.name, t.run_count) for t in task_runs]
    assert all(t.state is None or t.state.name != "AwaitingRetry" for t in task_runs)
    return message
