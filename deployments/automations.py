"""An automation telling ops outside Prefect (Slack, email...) when a Nomi connection expires.

``python -m deployments.automations --block slack-webhook/ops-alerts`` creates (or replaces) the
automation ``notify-nomi-connection-expired``: on every ``nomi.connection.expired`` event it sends
a notification through that notification block. The deployment trigger of ``notify-ops`` (in
``prefect.yaml``) works without any block; this one is optional.
"""

from __future__ import annotations

import argparse
import uuid

from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

AUTOMATION_NAME = "notify-nomi-connection-expired"
EXPIRED_EVENT = "nomi.connection.expired"


def expired_connection_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) notifying through one notification block."""
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Tell ops at once that a business's Nomi connection needs a reconnect.",
        trigger=EventTrigger(
            expect={EXPIRED_EVENT},
            match={"prefect.resource.id": "nomi.connection.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject="Nomi connection expired: {{ event.resource.id }}",
                body=(
                    "The Nomi connection {{ event.resource.id }} expired or was revoked; "
                    "publishing for it has stopped (items stay Ready). Run reconnect-to-nomi "
                    "for that business. Detail: {{ event.payload }}"
                ),
            )
        ],
    )


def block_document_id(block: str) -> uuid.UUID:
    """The id of a saved block given as ``<block-type-slug>/<name>``.

    Raises:
        ValueError: ``block`` is not ``type/name``.
    """
    block_type, _, name = block.partition("/")
    if not block_type or not name:
        raise ValueError("give the block as <block-type-slug>/<name>, e.g. slack-webhook/ops")
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name=name, block_type_slug=block_type)
    return document.id


def create_or_replace(block: str) -> uuid.UUID:
    """Create the automation for ``block``, deleting an older one of the same name.

    Returns:
        The automation's id.
    """
    automation = expired_connection_automation(block_document_id(block))
    with get_client(sync_client=True) as client:
        for older in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(older.id)
        return client.create_automation(automation)


def main(argv: list[str] | None = None) -> None:
    """Parse ``--block`` and create the automation."""
    parser = argparse.ArgumentParser(prog="python -m deployments.automations")
    parser.add_argument("--block", required=True, help="notification block: <type-slug>/<name>")
    args = parser.parse_args(argv)
    create_or_replace(args.block)


if __name__ == "__main__":
    main()
