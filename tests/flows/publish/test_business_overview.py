"""The business overview artifact follows the business: rewritten after its sync and its publish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from connector.history.keys import artifact_key
from connector.rules.vocabulary import ItemKind
from connector.store.db import make_engine
from flows.publish_items_to_nomi import PublishItemsParams, publish_items_to_nomi
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from sandbox.seed import HARBOUR
from tests.connector.publishing.test_publishing_world import Org, add_item, make_ready
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import FAST_LIMITS, artifact_markdown, prepare
from tests.flows.publish.test_publish_items_to_nomi import external_ids

pytestmark = pytest.mark.usefixtures("fast_world")


def test_the_overview_shows_the_lists_after_a_sync_and_what_waits_after_a_publish(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=1, sales=0, claims=0
    )
    with Session(make_engine(connector_db), expire_on_commit=False) as s:
        uncategorised = add_item(
            s,
            business.business_id,
            Org(business.tenant_id),
            ItemKind.COST,
            contact_name="Screwfix",
            category_edit=None,
        ).id
        s.commit()
        make_ready(s, business.business_id)
    key = artifact_key("overview", business.slug)

    sync_nomi_reference_data(SyncParams(business=business.slug, mode="full", app_block=nomi_app))

    synced = artifact_markdown(key)
    assert "- status: **connected**" in synced
    assert "| 453 | Office Expenses |" in synced  # categories with their codes
    assert "| STD20 |" in synced
    assert "## Items waiting (2)" in synced
    assert "- publish: never" in synced

    chosen = external_ids(connector_db, [*ids["cost"], uncategorised])
    publish_items_to_nomi(
        PublishItemsParams(
            business=business.slug,
            external_ids=chosen,
            acting_user=business.admin_email,
            app_block=nomi_app,
            limits=FAST_LIMITS,
        )
    )

    published = artifact_markdown(key)
    assert "## Items waiting (1)" in published
    assert f"| {chosen[1]} | review |" in published
    assert chosen[0] not in published
    assert "(person): published 1" in published
