"""The events of a business's Nomi connection and the one resource they all name.

Every event about a business's connection names the resource ``nomi.connection.<slug>``: the
automations and notify-ops match on it. Artifact keys: ``connector.history.keys``.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

CONNECTION_RESOURCE_PREFIX = "nomi.connection."
EVENT_CONNECTION_EXPIRED = "nomi.connection.expired"
EVENT_SYNC_FINISHED = "nomi.sync.finished"
EVENT_PUBLISH_FINISHED = "nomi.publish.finished"


def connection_resource(business_slug: str) -> dict[str, str]:
    """The Prefect event resource of one business's Nomi connection."""
    return {
        "prefect.resource.id": f"{CONNECTION_RESOURCE_PREFIX}{business_slug}",
        "prefect.resource.name": business_slug,
    }


def emit_connection_event(event: str, business_slug: str, payload: dict[str, Any]) -> None:
    """Emit one event about a business's connection (payloads hold counts and reasons only)."""
    emit_event(event=event, resource=connection_resource(business_slug), payload=payload)
