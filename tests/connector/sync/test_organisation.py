"""Mirroring the Nomi organisation against the sandbox: the row, its changes, its SyncRun rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from connector.store.history_tables import SyncRun
from connector.store.models import Organisation
from connector.sync.bookmarks import get_bookmark
from connector.sync.lists import SyncStatus
from connector.sync.organisation import ORGANISATION, OrganisationReport, sync_organisation
from nomi.client import NomiClient
from nomi.errors import ServerError
from nomi.tokens import RefreshingTokenProvider
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.connector.factories import make_business, make_connection
from tests.nomi.conftest import FAST, ORG, consent, make_oauth


@dataclass
class World:
    """A sandbox, a client for Bright Smile and a connector database with its connection."""

    sandbox: SandboxHandle
    nomi: NomiClient
    engine: Engine
    connection_id: uuid.UUID

    def sync(self, mode: Any = "incremental") -> OrganisationReport:
        return sync_organisation(
            self.engine, self.nomi, connection_id=self.connection_id, mode=mode
        )

    def row(self) -> Organisation | None:
        with db_session(self.engine) as s:
            return s.exec(
                select(Organisation).where(Organisation.connection_id == self.connection_id)
            ).one_or_none()

    def runs(self) -> list[SyncRun]:
        with db_session(self.engine) as s:
            return list(
                s.exec(
                    select(SyncRun)
                    .where(SyncRun.list_name == ORGANISATION)
                    .order_by(SyncRun.started_at)  # type: ignore[arg-type]
                )
            )

    def change_organisation(self, **changes: Any) -> None:
        path = f"/tenants/{self.nomi.tenant_id}"
        self.sandbox.admin.patch(path, json=changes).raise_for_status()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    settings = SandboxSettings(test_mode=True, per_minute=0, concurrent=0, token_per_minute=0)
    with running_sandbox(settings) as handle:
        yield handle


@pytest.fixture(scope="module")
def tokens(sandbox: SandboxHandle) -> Iterator[RefreshingTokenProvider]:
    oauth = make_oauth(sandbox)
    code, verifier = consent(sandbox, oauth, sandbox.tenant_id(ORG))
    yield RefreshingTokenProvider(oauth, oauth.exchange_code(code, verifier))
    oauth.close()


@pytest.fixture
def world(
    sandbox: SandboxHandle, tokens: RefreshingTokenProvider, database_url: str
) -> Iterator[World]:
    sandbox.clear_faults()
    engine = make_engine(database_url)
    migrate(engine)
    with db_session(engine) as s:
        business = make_business(s)
        connection_id = make_connection(
            s, business=business, nomi_tenant_id=sandbox.tenant_id(ORG)
        ).id
    with NomiClient(sandbox.base_url, sandbox.tenant_id(ORG), tokens, retry=FAST) as nomi:
        yield World(sandbox, nomi, engine, connection_id)
        # put Bright Smile back as seeded for the next test
        World(sandbox, nomi, engine, connection_id).change_organisation(
            lock_date=None, base_currency="GBP"
        )
    sandbox.clear_faults()
    engine.dispose()


def test_the_first_sync_mirrors_the_organisation_and_reports_no_change(world: World) -> None:
    report = world.sync(mode="full")
    row = world.row()
    assert report.status == SyncStatus.OK
    assert (report.inserted, report.updated) == (1, 0)
    assert not report.organisation_changed
    assert row is not None
    assert (row.name, row.base_currency, row.lock_date) == (ORG, "GBP", None)
    assert row.nomi_id == world.nomi.tenant_id
    assert row.last_seen_at >= report.started_at - dt.timedelta(seconds=1)
    [run] = world.runs()
    assert (run.mode, run.status, run.fetched, run.inserted, run.detail) == (
        "full",
        "ok",
        1,
        1,
        None,
    )
    with db_session(world.engine) as s:
        assert get_bookmark(s, connection_id=world.connection_id, list_name=ORGANISATION)


def test_an_unchanged_organisation_syncs_again_without_a_change(world: World) -> None:
    world.sync()
    first_seen = world.row()
    again = world.sync()
    assert (again.inserted, again.updated, again.changes) == (0, 0, [])
    row = world.row()
    assert row is not None
    assert first_seen is not None
    assert row.id == first_seen.id  # one row per connection, updated in place
    assert row.last_seen_at >= first_seen.last_seen_at
    assert len(world.runs()) == 2


def test_a_new_lock_date_and_base_currency_are_mirrored_recorded_and_reported(
    world: World,
) -> None:
    world.sync()
    world.change_organisation(lock_date="2026-03-31")
    moved = world.sync()
    assert moved.organisation_changed
    assert [(c.setting, c.before, c.after) for c in moved.changes] == [
        ("lock_date", None, "2026-03-31")
    ]
    assert moved.as_dict()["organisation_changed"] is True
    row = world.row()
    assert row is not None
    assert row.lock_date == dt.date(2026, 3, 31)
    assert world.runs()[-1].detail == "lock date none -> 2026-03-31"

    world.change_organisation(base_currency="EUR", lock_date="2026-04-30")
    both = world.sync()
    assert [str(c) for c in both.changes] == [
        "lock date 2026-03-31 -> 2026-04-30",
        "base currency GBP -> EUR",
    ]
    row = world.row()
    assert row is not None
    assert (row.base_currency, row.lock_date) == ("EUR", dt.date(2026, 4, 30))
    assert world.runs()[-1].updated == 1
    assert not world.sync().organisation_changed  # reported once, not on every later sync


def test_a_failed_read_is_recorded_and_keeps_the_mirrored_row(world: World) -> None:
    world.sync()
    kept = world.row()
    world.sandbox.fault("server_error", path="/api/v1/organisation", params={"status": 503})
    with pytest.raises(ServerError):
        world.sync()
    world.sandbox.clear_faults()
    assert world.runs()[-1].status == SyncStatus.FAILED
    assert "ServerError" in (world.runs()[-1].error or "")
    row = world.row()
    assert row is not None
    assert kept is not None
    assert (row.base_currency, row.last_seen_at) == (kept.base_currency, kept.last_seen_at)
