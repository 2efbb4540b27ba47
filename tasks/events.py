"""The events the connector emits and the two resources they name.

Every event about a business's connection names the resource ``nomi.connection.<slug>``; events
about a business's items (rejected by Nomi, held in review, become Ready) name
``nomi.business.<slug>``. The automations (``deployments.automations``), notify-ops and the
``auto-publish-to-nomi/on-ready`` trigger match on them. Artifact keys: ``connector.history.keys``.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

CONNECTION_RESOURCE_PREFIX = "nomi.connection."
BUSINESS_RESOURCE_PREFIX = "nomi.business."
EVENT_CONNECTION_VERIFIED = "nomi.connection.verified"
EVENT_CONNECTION_EXPIRING = "nomi.connection.expiring"
EVENT_CONNECTION_EXPIRED = "nomi.connection.expired"
EVENT_SYNC_FINISHED = "nomi.sync.finished"
EVENT_PUBLISH_FINISHED = "nomi.publish.finished"
EVENT_ITEMS_REJECTED = "nomi.items.rejected"
EVENT_ITEMS_HELD = "nomi.items.held"
#: Items of a business became Ready (or publishable again): the ``on-ready`` trigger starts the
#: business's auto-publish. One per business per task, never one per item.
EVENT_ITEMS_READY = "nomi.items.ready"
#: Most items an items event names one by one (its ``count`` is always the whole number).
MAX_NAMED_ITEMS = 20


def connection_resource(business_slug: str) -> dict[str, str]:
    """The Prefect event resource of one business's Nomi connection."""
    return {
        "prefect.resource.id": f"{CONNECTION_RESOURCE_PREFIX}{business_slug}",
        "prefect.resource.name": business_slug,
    }


def business_resource(business_slug: str) -> dict[str, str]:
    """The Prefect event resource of one business (its items)."""
    return {
        "prefect.resource.id": f"{BUSINESS_RESOURCE_PREFIX}{business_slug}",
        "prefect.resource.name": business_slug,
    }


def emit_connection_event(event: str, business_slug: str, payload: dict[str, Any]) -> None:
    """Emit one event about a business's connection (payloads hold counts and reasons only)."""
    emit_event(event=event, resource=connection_resource(business_slug), payload=payload)


def emit_business_event(event: str, business_slug: str, payload: dict[str, Any]) -> None:
    """Emit one event about a business's items (external ids and reasons, never secrets)."""
    emit_event(event=event, resource=business_resource(business_slug), payload=payload)


def emit_items_ready(business_slug: str, count: int, source: str) -> bool:
    """Tell the ``on-ready`` trigger that ``count`` items of a business became Ready (if any).

    Call it after the change is committed: the run it starts must see the items. ``source`` says
    what made them Ready (``import``, ``edit``, ``rules``, ``settings``, ``sync``...).

    Returns:
        True when an event was emitted (``count`` > 0).
    """
    if count <= 0:
        return False
    emit_business_event(EVENT_ITEMS_READY, business_slug, {"count": count, "source": source})
    return True


def emit_items_ready_on_commit(
    session: Session, business_slug: str, count: int, source: str
) -> None:
    """``emit_items_ready`` once ``session``'s transaction commits (never if it rolls back)."""
    if count <= 0:
        return
    sa_event.listen(
        session,
        "after_commit",
        lambda _: emit_items_ready(business_slug, count, source),
        once=True,
    )
