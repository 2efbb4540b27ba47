"""Automations ops create once per Prefect server: the expired-connection alert and crashed-run
detection (``python -m deployments.automations --block <type/name>`` or ``--crash-zombies``).
Why zombie runs must be crashed, and the heartbeat it needs: docs/reliability.md, "Crashes".
"""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from tasks.events import CONNECTION_RESOURCE_PREFIX, EVENT_CONNECTION_EXPIRED

AUTOMATION_NAME = "notify-nomi-connection-expired"
EXPIRED_EVENT = EVENT_CONNECTION_EXPIRED

ZOMBIE_AUTOMATION_NAME = "crash-zombie-nomi-runs"
#: Seconds between a flow run's heartbeats on our workers (Prefect accepts 30 at the least).
HEARTBEAT_SECONDS = 30
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
#: Silence after which a run is taken for dead: three heartbeats missed, as Prefect's guide says.
ZOMBIE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
#: Flows the zombie automation watches: those that never pause. connect-to-nomi and
#: reconnect-to-nomi wait paused for the admin's consent, which ends no heartbeat-expecting
#: window, so they are left out (a paused run is not a dead one).
WATCHED_FLOWS = (
    "auto-publish-to-nomi",
    "publish-items-to-nomi",
    "sync-nomi-reference-data",
    "verify-nomi-connection",
    "disconnect-from-nomi",
    "publish-history-report",
    "notify-ops",
)


def expired_connection_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) notifying through one notification block."""
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Tell ops at once that a business's Nomi connection needs a reconnect.",
        trigger=EventTrigger(
            expect={EXPIRED_EVENT},
            match={"prefect.resource.id": f"{CONNECTION_RESOURCE_PREFIX}*"},
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


def zombie_run_automation(within_seconds: int = ZOMBIE_AFTER_SECONDS) -> AutomationCore:
    """The automation (not yet saved) marking silent runs of ``WATCHED_FLOWS`` Crashed.

    A proactive trigger per flow run: after a heartbeat, expect another heartbeat or a final
    state within ``within_seconds``; if neither comes, set the run Crashed (which frees its
    deployment's concurrency slot; its claims come back on the next sweep).
    """
    return AutomationCore(
        name=ZOMBIE_AUTOMATION_NAME,
        description=(
            f"Mark a Nomi connector run Crashed when its heartbeats stop for {within_seconds} s "
            "(its worker died), so the next scheduled sweep is not cancelled behind it."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {within_seconds} s: the worker running it died.",
            )
        ],
    )


def replace_automation(automation: AutomationCore) -> uuid.UUID:
    """Save ``automation``, deleting older ones of the same name first.

    Returns:
        The automation's id.
    """
    with get_client(sync_client=True) as client:
        for older in client.read_automations_by_name(automation.name):
            client.delete_automation(older.id)
        return client.create_automation(automation)


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
    """Create the expired-connection automation for ``block``, replacing an older one.

    Returns:
        The automation's id.
    """
    return replace_automation(expired_connection_automation(block_document_id(block)))


def main(argv: list[str] | None = None) -> None:
    """Parse ``--block`` / ``--crash-zombies`` and create those automations."""
    parser = argparse.ArgumentParser(prog="python -m deployments.automations")
    parser.add_argument("--block", help="notify through this block: <type-slug>/<name>")
    parser.add_argument(
        "--crash-zombies",
        action="store_true",
        help=f"mark runs Crashed after {ZOMBIE_AFTER_SECONDS} s without a heartbeat",
    )
    args = parser.parse_args(argv)
    if not args.block and not args.crash_zombies:
        parser.error("say what to create: --block TYPE/NAME and/or --crash-zombies")
    if args.block:
        create_or_replace(args.block)
    if args.crash_zombies:
        replace_automation(zombie_run_automation())


if __name__ == "__main__":
    main()
