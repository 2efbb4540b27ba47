"""Reference-data sync against the sandbox over real HTTP into a migrated SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.connections.targets import SyncTarget, after_sync
from connector.rules.vocabulary import ItemStatus
from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from connector.store.history_tables import SyncRun
from connector.store.models import (
    BankAccount,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Customer,
    Item,
    Supplier,
    TaxRate,
)
from connector.sync.bookmarks import get_bookmark
from connector.sync.catalog import LISTS
from connector.sync.lists import SyncStatus, sync_list
from nomi.client import NomiClient
from nomi.errors import ServerError
from nomi.tokens import RefreshingTokenProvider
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.connector.factories import make_business, make_connection, make_item, make_supplier
from tests.nomi.conftest import FAST, ORG, consent, make_oauth

TABLES = {
    "suppliers": Supplier,
    "customers": Customer,
    "categories": Category,
    "tax_rates": TaxRate,
    "bank_accounts": BankAccount,
}
ADMIN_LISTS = {"suppliers": "suppliers", "categories": "categories", "tax_rates": "tax-rates"}


@dataclass
class World:
    """A sandbox, a client for Bright Smile and a connector database with its connection."""

    sandbox: SandboxHandle
    nomi: NomiClient
    engine: Engine
    target: SyncTarget

    @property
    def connection_id(self) -> uuid.UUID:
        return self.target.connection_id

    def sync(self, list_name: str, **kwargs: Any) -> Any:
        return sync_list(
            self.engine, self.nomi, connection_id=self.connection_id, list_name=list_name, **kwargs
        )

    def nomi_records(self, list_name: str) -> dict[str, Any]:
        fetch = getattr(self.nomi, f"iter_{list_name}")
        return {r.id: r for r in fetch(include_archived=True, page_size=1000)}

    def rows(self, list_name: str) -> dict[str, Any]:
        model: Any = TABLES[list_name]
        with db_session(self.engine) as s:
            return {r.nomi_id: r for r in s.exec(select(model))}

    def edit(self, list_name: str, nomi_id: str, **changes: Any) -> None:
        path = f"/tenants/{self.nomi.tenant_id}/{ADMIN_LISTS[list_name]}/{nomi_id}"
        self.sandbox.admin.patch(path, json=changes).raise_for_status()

    def set_setting(self, **values: Any) -> None:
        with db_session(self.engine) as s:
            row = s.exec(
                select(ConnectionSettings).where(
                    ConnectionSettings.connection_id == self.connection_id
                )
            ).one()
            for key, value in values.items():
                setattr(row, key, value)
            s.add(row)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    """One sandbox per module (tests that change records use records no other test reads)."""
    settings = SandboxSettings(test_mode=True, per_minute=0, concurrent=0, token_per_minute=0)
    with running_sandbox(settings) as handle:
        yield handle


@pytest.fixture(scope="module")
def tokens(sandbox: SandboxHandle) -> Iterator[RefreshingTokenProvider]:
    oauth = make_oauth(sandbox)
    code, verifier = consent(sandbox, oauth, sandbox.tenant_id(ORG))
    yield RefreshingTokenProvider(oauth, oauth.exchange_code(code, verifier))
    oauth.close()


def _world(sandbox: SandboxHandle, tokens: RefreshingTokenProvider, url: str) -> Iterator[World]:
    sandbox.clear_faults()
    engine = make_engine(url)
    migrate(engine)
    with db_session(engine) as s:
        business = make_business(s)
        connection = make_connection(s, business=business, nomi_tenant_id=sandbox.tenant_id(ORG))
        target = SyncTarget(business.id, business.slug, connection.id, connection.status)
    with NomiClient(sandbox.base_url, sandbox.tenant_id(ORG), tokens, retry=FAST) as nomi:
        yield World(sandbox, nomi, engine, target)
    sandbox.clear_faults()
    engine.dispose()


@pytest.fixture
def world(
    sandbox: SandboxHandle, tokens: RefreshingTokenProvider, tmp_path: Path
) -> Iterator[World]:
    yield from _world(sandbox, tokens, f"sqlite:///{tmp_path}/connector.db")


def test_a_full_sync_mirrors_every_list_and_a_rerun_changes_nothing(world: World) -> None:
    for name in LISTS:
        report = world.sync(name, mode="full")
        nomi = world.nomi_records(name)
        rows = world.rows(name)
        assert report.status == SyncStatus.OK
        assert report.inserted == len(nomi) == len(rows) > 0
        assert set(rows) == set(nomi)
        for nomi_id, record in nomi.items():
            assert rows[nomi_id].name == record.name
            assert rows[nomi_id].status == ("ACTIVE" if record.status == "ACTIVE" else "ARCHIVED")
        with db_session(world.engine) as s:
            bookmark = get_bookmark(s, connection_id=world.connection_id, list_name=name)
        assert bookmark is not None
        assert bookmark == report.bookmark_after

    before = {name: world.rows(name) for name in LISTS}
    for name in LISTS:
        again = world.sync(name, mode="full")
        assert (again.inserted, again.updated, again.archived) == (0, 0, 0)
        assert {k: (r.name, r.status) for k, r in world.rows(name).items()} == {
            k: (r.name, r.status) for k, r in before[name].items()
        }
    with db_session(world.engine) as s:
        runs = list(s.exec(select(SyncRun).where(SyncRun.connection_id == world.connection_id)))
    assert len(runs) == 2 * len(LISTS)
    assert {r.status for r in runs} == {"ok"}


def test_incremental_sync_picks_up_a_rename_and_an_archive(world: World) -> None:
    world.sync("categories", mode="full")
    world.sync("tax_rates", mode="full")
    categories = [c for c in world.nomi_records("categories").values() if c.status == "ACTIVE"]
    renamed, archived = categories[0], categories[1]
    world.edit("categories", renamed.id, name=f"{renamed.name} (renamed)")
    world.edit("categories", archived.id, status="ARCHIVED")

    report = world.sync("categories", lookback=timedelta(seconds=0))

    rows = world.rows("categories")
    assert rows[renamed.id].name == f"{renamed.name} (renamed)"
    assert rows[archived.id].status == "ARCHIVED"
    assert (report.inserted, report.updated, report.archived) == (0, 1, 1)
    assert report.fetched < len(categories)  # incremental: only what changed since the bookmark
    assert report.bookmark_after is not None
    assert report.bookmark_before is not None
    assert report.bookmark_after > report.bookmark_before
    world.edit("categories", renamed.id, name=renamed.name)
    world.edit("categories", archived.id, status="ACTIVE")


def test_records_changing_between_page_fetches_still_converge(world: World) -> None:
    world.sandbox.admin.post(
        f"/tenants/{world.nomi.tenant_id}/suppliers", json={"count": 40}
    ).raise_for_status()
    world.sandbox.fault("page_drift", path="/api/v1/suppliers", count=2, params={"count": 2})

    report = world.sync("suppliers", mode="full", page_size=7)

    assert report.passes >= 2
    assert report.status == SyncStatus.OK
    assert set(world.rows("suppliers")) == set(world.nomi_records("suppliers"))
    assert report.archived == 0  # nothing skipped, so nothing wrongly archived


def test_a_failed_sync_keeps_the_bookmark_and_records_the_failure(world: World) -> None:
    first = world.sync("bank_accounts", mode="full")
    world.sandbox.fault("server_error", path="/api/v1/bank-accounts", params={"status": 503})

    with pytest.raises(ServerError):
        world.sync("bank_accounts")

    with db_session(world.engine) as s:
        bookmark = get_bookmark(s, connection_id=world.connection_id, list_name="bank_accounts")
        last = s.exec(select(SyncRun).order_by(sa.desc(sa.column("started_at")))).first()
    assert bookmark == first.bookmark_after
    assert last is not None
    assert last.status == "failed"
    assert "ServerError" in (last.error or "")
    assert last.bookmark_after == first.bookmark_after


def test_a_full_sync_archives_rows_nomi_no_longer_returns(world: World) -> None:
    with db_session(world.engine) as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        make_supplier(s, connection=connection, nomi_id="deleted-in-nomi", name="Gone Ltd")

    incremental = world.sync("suppliers")
    assert world.rows("suppliers")["deleted-in-nomi"].status == "ACTIVE"
    assert incremental.archived == 0
    full = world.sync("suppliers", mode="full")

    assert world.rows("suppliers")["deleted-in-nomi"].status == "ARCHIVED"
    assert full.archived == 1


def _nomi_rules(world: World) -> dict[str, str | None]:
    with db_session(world.engine) as s:
        rules = s.exec(
            select(ContactRule).where(
                ContactRule.connection_id == world.connection_id, ContactRule.source == "nomi"
            )
        )
        return {r.name: r.tax_rate_nomi_id for r in rules}


def test_nomi_supplier_tax_rates_become_rules_and_go_when_cleared_or_turned_off(
    world: World,
) -> None:
    world.set_setting(use_supplier_tax_rates=True)
    world.sync("suppliers", mode="full")
    with db_session(world.engine) as s:
        after_sync(s, world.target, all_lists_ok=True)
    expected = {
        r.name: r.default_tax_rate_id
        for r in world.nomi_records("suppliers").values()
        if r.default_tax_rate_id and r.status == "ACTIVE"
    }
    assert _nomi_rules(world) == expected
    assert expected

    cleared = sorted(expected)[0]
    nomi_id = next(r.id for r in world.nomi_records("suppliers").values() if r.name == cleared)
    world.edit("suppliers", nomi_id, default_tax_rate_id=None)
    world.sync("suppliers", lookback=timedelta(0))
    with db_session(world.engine) as s:
        changes = after_sync(s, world.target, all_lists_ok=True)
    assert changes.rules.removed == 1
    assert _nomi_rules(world) == {k: v for k, v in expected.items() if k != cleared}
    with db_session(world.engine) as s:
        assert after_sync(s, world.target, all_lists_ok=True).rules.upserted == 0  # idempotent

    world.set_setting(use_supplier_tax_rates=False)
    world.sync("suppliers")
    with db_session(world.engine) as s:
        after_sync(s, world.target, all_lists_ok=True)
    assert _nomi_rules(world) == {}
    world.edit("suppliers", nomi_id, default_tax_rate_id=expected[cleared])


def test_items_go_back_to_review_when_their_tax_rate_or_category_is_archived(
    world: World,
) -> None:
    for name in LISTS:
        world.sync(name, mode="full")
    rates = [r for r in world.nomi_records("tax_rates").values() if r.status == "ACTIVE"]
    rate = next(r for r in rates if r.applies_to in ("PURCHASES", "BOTH") and r.rate > 0)
    category = next(
        c
        for c in world.nomi_records("categories").values()
        if c.status == "ACTIVE" and c.type == "EXPENSE"
    )
    supplier = next(s for s in world.nomi_records("suppliers").values() if s.status == "ACTIVE")
    with db_session(world.engine) as s:
        business_id = world.target.business_id
        from connector.store.models import Business

        business = s.get(Business, business_id)
        assert business is not None
        on_rate = make_item(
            s,
            business=business,
            status=ItemStatus.REVIEW,
            contact_name=supplier.name,
            category_edit=category.id,
            tax_rate_edit=rate.id,
        )
        item_ids = [on_rate.id]
    with db_session(world.engine) as s:
        first = after_sync(s, world.target, all_lists_ok=True)
    assert on_rate.id in first.review.became_ready

    world.edit("tax_rates", rate.id, status="ARCHIVED")
    world.sync("tax_rates", lookback=timedelta(0))
    with db_session(world.engine) as s:
        second = after_sync(s, world.target, all_lists_ok=True)
        item = s.get(Item, item_ids[0])
    assert second.review.became_review == (on_rate.id,)
    assert item is not None
    assert item.status == ItemStatus.REVIEW
    assert any("archived" in reason for reason in item.review_reasons)

    world.edit("tax_rates", rate.id, status="ACTIVE")
    world.edit("categories", category.id, status="ARCHIVED")
    world.sync("tax_rates", lookback=timedelta(0))
    world.sync("categories", lookback=timedelta(0))
    with db_session(world.engine) as s:
        third = after_sync(s, world.target, all_lists_ok=True)
        item = s.get(Item, item_ids[0])
    assert third.review.became_review == ()
    assert item is not None
    assert item.status == ItemStatus.REVIEW
    assert any("category" in reason and "archived" in reason for reason in item.review_reasons)
    world.edit("categories", category.id, status="ACTIVE")


@pytest.mark.postgres
def test_full_and_concurrent_syncs_on_postgresql(
    sandbox: SandboxHandle, tokens: RefreshingTokenProvider, postgres_url: str
) -> None:
    for world in _world(sandbox, tokens, postgres_url):
        world.set_setting(use_supplier_tax_rates=True)
        reports: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                reports.append(world.sync("suppliers", mode="full"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        nomi = world.nomi_records("suppliers")
        with db_session(world.engine) as s:
            count = s.exec(
                select(sa.func.count())
                .select_from(Supplier)
                .where(Supplier.connection_id == world.connection_id)
            ).one()
            after_sync(s, world.target, all_lists_ok=True)
        assert count == len(nomi)
        assert sum(r.archived for r in reports) == 0
        assert set(world.rows("suppliers")) == set(nomi)
        assert _nomi_rules(world)
        again = world.sync("suppliers", mode="full")
        assert (again.inserted, again.updated, again.archived) == (0, 0, 0)
