"""Helpers for correction tests: an admin of the world's business, published items, live records.

No tests here; ``test_corrections.py`` and the reliability tests use them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from connector.admin.corrections import CorrectionResult, archive_published_item, correct_item
from connector.rules.vocabulary import ItemStatus, Role
from connector.store.models import Business
from nomi.client import NomiClient
from tests.connector.factories import make_membership, make_user
from tests.connector.publishing.test_publishing_world import World

#: The sandbox's ``/_admin/records`` kind of each record type.
KINDS = ("expense", "sales_invoice", "supplier_credit_note", "customer_credit_note")


def add_admin(world: World, role: str = Role.ADMIN) -> str:
    """A user with ``role`` in the world's business; returns the email."""
    with world.session() as s:
        business = s.get(Business, world.business_id)
        assert business is not None
        email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        user = make_user(s, email=email)
        make_membership(s, user=user, business=business, role=role)
        s.commit()
    return email


def published(world: World, kind: str, **values: Any) -> uuid.UUID:
    """An item of ``kind`` published through the normal pipeline."""
    item_id = world.add(kind, **values)
    world.ready()
    world.publish(workers=1)
    assert world.item(item_id).status == ItemStatus.PUBLISHED
    return item_id


def correct(
    world: World,
    item_id: uuid.UUID,
    actor: str,
    changes: Mapping[str, str],
    nomi: NomiClient | None = None,
) -> CorrectionResult:
    """Correct the item as ``actor`` (the library call the CLI and the flow make)."""
    with world.session() as s:
        business = s.get(Business, world.business_id)
        assert business is not None
        external_id = world.item(item_id).external_id
        return correct_item(
            s,
            nomi or world.nomi,
            business=business,
            external_id=external_id,
            actor_email=actor,
            changes=changes,
        )


def archive(world: World, item_id: uuid.UUID, actor: str) -> CorrectionResult:
    """Archive the published item as ``actor``."""
    with world.session() as s:
        business = s.get(Business, world.business_id)
        assert business is not None
        return archive_published_item(
            s,
            world.nomi,
            business=business,
            external_id=world.item(item_id).external_id,
            actor_email=actor,
        )


def item_records(world: World, item_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every Nomi record of any type whose ``source_id`` is the item's (any generation)."""
    mine = str(item_id)
    return [
        record
        for kind in KINDS
        for record in world.records(kind)
        if (record.get("source_id") or "").split(":")[0] == mine
    ]


def active_records(world: World, item_id: uuid.UUID) -> list[dict[str, Any]]:
    """The item's records Nomi holds as active (not voided)."""
    return [r for r in item_records(world, item_id) if r.get("status") != "VOIDED"]
