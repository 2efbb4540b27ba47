"""publish-items-to-nomi against the sandbox: external ids, contact answers, refusals, and why."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.history.keys import artifact_key
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import Item
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
from tests.flows.publish.support import FAST_LIMITS, artifact_markdown, prepare, task_run_counts

pytestmark = pytest.mark.usefixtures("fast_world")


def external_ids(connector_db: str, ids: list[uuid.UUID]) -> list[str]:
    """The external ids of these items (what `items list` shows and the form takes)."""
    with Session(make_engine(connector_db)) as s:
        return [item.external_id for i in ids if (item := s.get(Item, i)) is not None]


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

    result = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            external_ids=external_ids(connector_db, [*held, *ids["expense_claim"]]),
            acting_user=business.admin_email,
            confirm_new_contacts=True,
            app_block=nomi_app,
            limits=FAST_LIMITS,
        )
    )

    assert result.summary.published == 3
    assert result.not_published == {}
    assert result.message == "published 3 of 3"
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
                external_ids=external_ids(connector_db, held),
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
            external_ids=external_ids(connector_db, [held, unanswered]),
            acting_user=business.admin_email,
            map_contacts={"Screwfix Direct": screwfix},
            app_block=nomi_app,
            limits=FAST_LIMITS,
        )
    )

    assert result.summary.published == 1
    [unanswered_id] = external_ids(connector_db, [unanswered])
    assert "new supplier 'Nobody Yet'" in result.not_ready[unanswered_id]
    assert result.not_published == result.not_ready
    [expense] = records(sandbox, business.tenant_id, "expense")
    assert screwfix in str(expense)
    assert records(sandbox, business.tenant_id, "supplier") == []
    engine = make_engine(connector_db)
    items = {i.id: i for i in engine_items(engine, business.business_id)}
    assert items[held].contact_mapped_nomi_id == screwfix
    assert items[unanswered].status == ItemStatus.REVIEW


def test_a_non_member_is_refused_in_one_line_and_nothing_is_tried_again(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=1, sales=0, claims=0
    )

    state = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            external_ids=external_ids(connector_db, ids["cost"]),
            acting_user="stranger@example.test",
            app_block=nomi_app,
        ),
        return_state=True,
    )

    assert state.is_failed()
    message = state.message or ""
    assert message.startswith("refused: "), message
    assert "\n" not in message
    assert "not a member" in message or "stranger@example.test" in message, message
    assert task_run_counts(state) == {
        f"choose-items-{business.slug}": 1
    }  # no retry, nothing published
    engine = make_engine(connector_db)
    assert [i.status for i in engine_items(engine, business.business_id)] == [ItemStatus.READY]
    with Session(engine) as s:
        refusal = s.exec(select(AuditLog).where(AuditLog.allowed == False)).one()  # noqa: E712
        assert refusal.action == "publish.items"


def test_an_unknown_external_id_is_refused_naming_it_with_close_matches(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=1, sales=0, claims=0
    )
    [known] = external_ids(connector_db, ids["cost"])
    typo = known[:-1] + ("x" if known[-1] != "x" else "y")

    state = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            external_ids=[known, typo],
            acting_user=business.admin_email,
            app_block=nomi_app,
        ),
        return_state=True,
    )

    assert state.is_failed()
    message = state.message or ""
    assert message.startswith("refused: "), message
    assert typo in message
    assert known in message  # the close match
    assert task_run_counts(state) == {f"choose-items-{business.slug}": 1}
    assert records(sandbox, business.tenant_id, "expense") == []  # the known one waits too


def test_each_item_not_published_is_named_with_why_in_the_message_and_the_artifact(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=2, sales=0, claims=0
    )
    engine = make_engine(connector_db)
    with Session(engine, expire_on_commit=False) as s:
        org = Org(business.tenant_id)
        uncategorised = add_item(
            s, business.business_id, org, ItemKind.COST, contact_name="Screwfix", category_edit=None
        ).id
        s.commit()
        make_ready(s, business.business_id)
    first, second = ids["cost"]
    sandbox.fault(
        "validation",
        tenant_id=business.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        after=1,
        count=1,
        params={"code": "period_locked"},
    )
    chosen = external_ids(connector_db, [first, second, uncategorised])

    state = publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            external_ids=chosen,
            acting_user=business.admin_email,
            app_block=nomi_app,
            limits=FAST_LIMITS.model_copy(update={"concurrent": 1}),
        ),
        return_state=True,
    )

    assert state.is_completed()
    message = state.message or ""
    result = state.result()
    # The second expense POST is refused: which of the two Ready items that is depends on the
    # order the batch's threads reach Nomi (more threads than requests in flight).
    rejected = set(result.not_published) - {chosen[2]}
    assert len(rejected) == 1, result.not_published
    assert rejected < {chosen[0], chosen[1]}, result.not_published
    (refused,) = rejected
    (published,) = {chosen[0], chosen[1]} - rejected
    assert message.startswith("published 1 of 3; not published: "), message
    assert f"{chosen[2]} (in review: " in message, message
    assert f"{refused} (rejected by Nomi (period_locked)" in message, message
    assert published not in message
    assert set(result.not_published) == {refused, chosen[2]}
    markdown = artifact_markdown(artifact_key("publish-items", business.slug))
    assert "Published **1 of 3**" in markdown
    assert f"| `{refused}` | rejected by Nomi (period_locked)" in markdown
    assert f"| `{chosen[2]}` | in review: " in markdown
