"""correct-item, archive-item and release-duplicate against the sandbox: a new generation, a void,
archiving and releasing unpublished items, failed refusals."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from connector.rules.vocabulary import ItemStatus
from connector.store.db import make_engine
from connector.store.models import Item
from flows.archive_item import ArchiveItemParams, archive_item
from flows.auto_publish_to_nomi import auto_publish_to_nomi
from flows.correct_item import CorrectItemParams, correct_item
from flows.ops.release_duplicate import ReleaseDuplicateParams, release_duplicate
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.connector.publishing.test_publishing_world import make_ready, records
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import params, prepare

pytestmark = pytest.mark.usefixtures("fast_world")


def published_cost(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> tuple[ConnectedBusiness, Item]:
    """A connected business with one cost item published by auto-publish."""
    business, ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        BRIGHT_SMILE,
        tmp_path,
        costs=1,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    auto_publish_to_nomi(params(business=business.slug, app_block=nomi_app))
    return business, item_of(connector_db, ids["cost"][0])


def item_of(connector_db: str, item_id: uuid.UUID) -> Item:
    with Session(make_engine(connector_db), expire_on_commit=False) as s:
        item = s.get(Item, item_id)
        assert item is not None
        return item


def test_correct_item_voids_the_record_and_publishes_the_corrected_one(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, item = published_cost(connect_business, nomi_app, connector_db, tmp_path)
    assert item.status == ItemStatus.PUBLISHED

    message = correct_item(
        CorrectItemParams(
            business=business.slug,
            external_id=item.external_id,
            acting_user=business.admin_email,
            category="Travel - National",
            app_block=nomi_app,
        )
    )

    after = item_of(connector_db, item.id)
    assert f"{item.external_id}: published as generation 1" in message
    assert after.voided_record_ids == [f"expense:{item.nomi_record_id}"]
    statuses = {r["id"]: r["status"] for r in records(sandbox, business.tenant_id, "expense")}
    assert statuses[item.nomi_record_id] == "VOIDED"
    assert statuses[after.nomi_record_id] == "ACTIVE"


def test_a_refused_correction_ends_the_run_failed_in_one_line_with_nomis_reason(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, item = published_cost(connect_business, nomi_app, connector_db, tmp_path)
    sandbox.admin.patch(
        f"/tenants/{business.tenant_id}", json={"lock_date": "2026-12-31"}
    ).raise_for_status()

    state = correct_item(
        CorrectItemParams(
            business=business.slug,
            external_id=item.external_id,
            acting_user=business.admin_email,
            total="150.00",
            tax="25.00",
            app_block=nomi_app,
        ),
        return_state=True,
    )

    assert state.is_failed()
    assert "period_locked" in (state.message or "")
    assert "\n" not in (state.message or "")
    after = item_of(connector_db, item.id)
    assert after.status == ItemStatus.PUBLISHED
    assert after.nomi_record_id == item.nomi_record_id
    assert after.total == item.total


def test_archive_item_voids_the_record_and_archives_the_item(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, item = published_cost(connect_business, nomi_app, connector_db, tmp_path)

    archive_item(
        ArchiveItemParams(
            business=business.slug,
            external_id=item.external_id,
            acting_user=business.admin_email,
            app_block=nomi_app,
        )
    )

    after = item_of(connector_db, item.id)
    assert after.status == ItemStatus.ARCHIVED
    [voided] = records(sandbox, business.tenant_id, "expense")
    assert voided["status"] == "VOIDED"


def test_items_correct_runs_the_flow_and_a_refusal_exits_1_in_one_error_line(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from connector.admin.cli import app

    business, item = published_cost(connect_business, nomi_app, connector_db, tmp_path)
    base = ["--home", str(tmp_path / "home"), "--database-url", connector_db, "items"]
    who = ["--business", business.slug, "--acting-user", business.admin_email]
    runner = CliRunner()

    done = runner.invoke(
        app,
        [*base, "correct", item.external_id, *who, "--category", "493", "--app-block", nomi_app],
    )
    assert done.exit_code == 0, done.output
    assert "published as generation 1" in done.output

    sandbox.admin.patch(
        f"/tenants/{business.tenant_id}", json={"lock_date": "2026-12-31"}
    ).raise_for_status()
    refused = runner.invoke(app, [*base, "void", item.external_id, *who, "--app-block", nomi_app])
    assert refused.exit_code == 1
    [line] = [x for x in refused.output.splitlines() if x.startswith("error:")]
    assert "period_locked" in line
    assert item_of(connector_db, item.id).status == ItemStatus.PUBLISHED


def look_alikes(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> tuple[ConnectedBusiness, Item, Item]:
    """Two cost items alike in supplier, date and total: the later one held as a duplicate."""
    business, ids = prepare(
        connect_business, nomi_app, connector_db, BRIGHT_SMILE, tmp_path, costs=2, sales=0, claims=0
    )
    first_id, second_id = ids["cost"]
    engine = make_engine(connector_db)
    with Session(engine, expire_on_commit=False) as s:
        first, second = s.get(Item, first_id), s.get(Item, second_id)
        assert first is not None
        assert second is not None
        second.date, second.total, second.tax_amount = first.date, first.total, first.tax_amount
        s.add(second)
        s.commit()
        make_ready(s, business.business_id)
    engine.dispose()
    held = item_of(connector_db, second_id)
    assert held.status == ItemStatus.REVIEW
    assert any(f"possible duplicate of {first.external_id}" in r for r in held.review_reasons)
    return business, item_of(connector_db, first_id), held


def test_release_duplicate_makes_the_held_item_ready_and_a_stranger_is_refused_in_one_line(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> None:
    business, first, held = look_alikes(connect_business, nomi_app, connector_db, tmp_path)

    refused = release_duplicate(
        ReleaseDuplicateParams(
            business=business.slug, acting_user="nobody@example.com", item=held.external_id
        ),
        return_state=True,
    )
    assert refused.is_failed()
    assert "\n" not in (refused.message or "")
    assert item_of(connector_db, held.id).status == ItemStatus.REVIEW

    message = release_duplicate(
        ReleaseDuplicateParams(
            business=business.slug, acting_user=business.admin_email, item=held.external_id
        )
    )

    assert f"{held.external_id}: released ({first.external_id})" in message
    assert item_of(connector_db, held.id).status == ItemStatus.READY


def test_archive_item_archives_an_unpublished_duplicate_without_calling_nomi(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _, held = look_alikes(connect_business, nomi_app, connector_db, tmp_path)

    message = archive_item(
        ArchiveItemParams(
            business=business.slug,
            external_id=held.external_id,
            acting_user=business.admin_email,
            app_block="no-such-block",  # never loaded: Nomi is not called for it
        )
    )

    assert "never published, Nomi not called" in message
    assert item_of(connector_db, held.id).status == ItemStatus.ARCHIVED
    assert records(sandbox, business.tenant_id, "expense") == []
