"""Tasks of correct-item, archive-item and release-duplicate: one item at a time."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task

from blocks.app import NomiApp
from connector.admin.businesses import get_business
from connector.admin.corrections import (
    CorrectionResult,
    archive_published_item,
    correct_item,
)
from connector.admin.item_holds import HoldResult, archive_item, release_duplicate
from connector.errors import NotConnectedError
from connector.items.lookup import items_by_external_id
from connector.rules.vocabulary import ItemStatus
from tasks.events import emit_items_ready_on_commit
from tasks.ops.actions import refusals_as_one_line
from tasks.runtime import business_and_connection, db, load_credentials, nomi_client


@task(name="correct-published-item", retries=0, persist_result=False)
def correct_published_item(
    database_url: str,
    app: NomiApp,
    business_slug: str,
    external_id: str,
    acting_user: str,
    changes: Mapping[str, str],
) -> CorrectionResult:
    """Void the item's Nomi record, apply the edit, publish the new generation (no retries:
    a refusal is final, and a transient failure leaves the correction to the next publish run)."""
    return _act(database_url, app, business_slug, external_id, acting_user, changes, False)


@task(name="archive-published-item", retries=0, persist_result=False)
def archive_item_at_nomi(
    database_url: str, app: NomiApp, business_slug: str, external_id: str, acting_user: str
) -> CorrectionResult:
    """Void the item's Nomi record and archive the item (never published again)."""
    return _act(database_url, app, business_slug, external_id, acting_user, {}, True)


def _act(
    database_url: str,
    app: NomiApp,
    business_slug: str,
    external_id: str,
    acting_user: str,
    changes: Mapping[str, str],
    archive: bool,
) -> CorrectionResult:
    """Run the correction or archive with the business's Nomi client."""
    with db(database_url) as session:
        business, connection = business_and_connection(session, business_slug)
        if connection is None or not connection.credentials_block_name:
            raise NotConnectedError(f"business '{business_slug}' is not connected to Nomi")
        load_credentials(app, connection)
        with nomi_client(app, connection) as nomi:
            if archive:
                return archive_published_item(
                    session,
                    nomi,
                    business=business,
                    external_id=external_id,
                    actor_email=acting_user,
                )
            return correct_item(
                session,
                nomi,
                business=business,
                external_id=external_id,
                actor_email=acting_user,
                changes=changes,
            )


@task(name="archive-unpublished-item", retries=0, persist_result=False)
def archive_if_unpublished(
    database_url: str, business_slug: str, external_id: str, acting_user: str
) -> HoldResult | None:
    """Archive an item never published (audited; Nomi is not called); None when it is published.

    The later items held as its possible duplicates are assessed again.
    """
    with refusals_as_one_line(), db(database_url, write=True) as session:
        business = get_business(session, business_slug)
        [item] = items_by_external_id(session, business, [external_id])
        if item.status == ItemStatus.PUBLISHED:
            session.rollback()
            return None
        return archive_item(
            session, business=business, external_id=external_id, actor_email=acting_user
        )


@task(name="release-duplicate", retries=0, persist_result=False)
def release_held_duplicate(
    database_url: str, business_slug: str, external_id: str, acting_user: str
) -> HoldResult:
    """Say an item held as a possible duplicate is not one (audited; the pair is never asked
    again); it is assessed again, and published on Ready like any other item."""
    with refusals_as_one_line(), db(database_url, write=True) as session:
        business = get_business(session, business_slug)
        result = release_duplicate(
            session, business=business, external_id=external_id, actor_email=acting_user
        )
        ready = int(result.status == ItemStatus.READY)
        emit_items_ready_on_commit(session, business.slug, ready, "release")
        return result
