"""publish-items-to-nomi against the sandbox: confirmations, mappings, membership, not Ready."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from flows.publish_items_to_nomi import PublishItemsParams, publish_items_to_nomi
from sandbox.seed import HARBOUR
from sandbox.testing import SandboxHandle
from tasks.runtime import engine_for
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    engine_items,
    make_ready,
    records,
    set_settings,
)
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import FAST_LIMITS, prepare

pytestmark = pytest.mark.usefixtures("fast_world")


def held_items(connector_db: str, business: ConnectedBusiness, names: list[str]) -> list[uuid.UUID]:
    """Cost items naming suppliers Nomi does not know, held by warn_new_supplier."""
    engine = make_engine(connector_db)
    with Session(engine, expire_on_commit=False) as s:
        set_settings(s, business.connection_id, warn_new_supplier=True)
        org = Org(business.tenant_id)
        ids = [
            add_item(s, business.business_id, org, ItemKind.COST, contact_name=name).id
            for name in names
        ]
        s.commit()
        make_ready(s, business.business_id)
    return ids


def test_confirming_new_suppliers_publishes_held_items_and_audits_it(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=0, sales=0, claims=1
    )
    held = held_items(connector_db, business, ["Fresh Beans Ltd", "Fresh Beans Limited"])
    engine = make_engine(connector_db)
    assert {i.status for i in engine_items(engine, business.business_id) if i.id in held} == {
        ItemStatus.REVIEW
    }
    missing = uuid.uuid4()

    result = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            item_ids=[*held, *ids["expense_claim"], missing],
            acting_user=business.admin_email,
            confirm_new_contacts=True,
            app_block=nomi_app,
            limits=FAST_LIMITS,
        )
    )

    assert result.summary.published == 3
    assert result.not_ready == {str(missing): "no such item in this business"}
    assert len(records(sandbox, business.tenant_id, "supplier")) == 1
    assert len(records(sandbox, business.tenant_id, "expense")) == 3
    items = {i.id: i for i in engine_items(engine, business.business_id)}
    assert all(items[i].contact_confirmed for i in held)
    assert all(items[i].status == ItemStatus.PUBLISHED for i in [*held, *ids["expense_claim"]])
    with Session(engine) as s:
        audits = s.exec(select(AuditLog).where(AuditLog.action == "publish.confirm_new_contact"))
        assert len(audits.all()) == 2


def test_confirming_while_another_connection_commits_waits_its_turn(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """Auto-publish commits all the time. The confirmation reads then writes: on SQLite it must
    wait its turn, not fail at once with "database is locked" (runs on PostgreSQL too)."""
    business, _ = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=0, sales=0, claims=0
    )
    held = held_items(connector_db, business, ["Fresh Beans Ltd"])

    with commit_elsewhere_before_first_write(engine_for(connector_db)) as errors:
        result = publish_items_to_nomi(
            PublishItemsParams(
                business=business.slug,
                item_ids=held,
                acting_user=business.admin_email,
                confirm_new_contacts=True,
                app_block=nomi_app,
                limits=FAST_LIMITS,
            )
        )

    assert errors == []
    assert result.summary.published == 1
    assert len(records(sandbox, business.tenant_id, "expense")) == 1


def test_mapping_a_new_supplier_to_an_existing_one_publishes_without_creating_it(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _ = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=0, sales=0, claims=0
    )
    [held, unanswered] = held_items(connector_db, business, ["Screwfix Direct", "Nobody Yet"])
    screwfix = Org(business.tenant_id).supplier("Screwfix")

    result = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            item_ids=[held, unanswered],
            acting_user=business.admin_email,
            map_contacts={"Screwfix Direct": screwfix},
            app_block=nomi_app,
            limits=FAST_LIMITS,
        )
    )

    assert result.summary.published == 1
    assert "new supplier 'Nobody Yet'" in result.not_ready[str(unanswered)]
    [expense] = records(sandbox, business.tenant_id, "expense")
    assert screwfix in str(expense)
    assert records(sandbox, business.tenant_id, "supplier") == []
    engine = make_engine(connector_db)
    items = {i.id: i for i in engine_items(engine, business.business_id)}
    assert items[held].contact_mapped_nomi_id == screwfix
    assert items[unanswered].status == ItemStatus.REVIEW


def test_a_non_member_may_not_publish(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=1, sales=0, claims=0
    )

    with pytest.raises(PermissionDeniedError, match="not a member"):
        publish_items_to_nomi(
            PublishItemsParams(
                business=business.slug,
                item_ids=ids["cost"],
                acting_user="stranger@example.test",
                app_block=nomi_app,
            )
        )

    engine = make_engine(connector_db)
    assert [i.status for i in engine_items(engine, business.business_id)] == [ItemStatus.READY]
    with Session(engine) as s:
        refusal = s.exec(select(AuditLog).where(AuditLog.allowed == False)).one()  # noqa: E712
        assert refusal.action == "publish.items"
