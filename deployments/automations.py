"""Automations ops create once per Prefect server: the notifications that tell ops without looking,
and crashed-run detection (``python -m deployments.automations --block <type/name>`` and/or
``--crash-zombies``). Each is replaced by name, so running the command again never doubles one.
What each notification says and what to do: docs/operations.md, "Being told". Why zombie runs
must be crashed, and the heartbeat it needs: docs/reliability.md, "Crashes".
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import uuid
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from tasks.events import (
    BUSINESS_RESOURCE_PREFIX,
    CONNECTION_RESOURCE_PREFIX,
    EVENT_CONNECTION_EXPIRED,
    EVENT_CONNECTION_EXPIRING,
    EVENT_ITEMS_HELD,
    EVENT_ITEMS_REJECTED,
)

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


EXPIRING_AUTOMATION_NAME = "notify-nomi-connection-expiring"
REJECTED_AUTOMATION_NAME = "notify-nomi-items-rejected"
HELD_AUTOMATION_NAME = "notify-nomi-items-held"
RUN_FAILED_AUTOMATION_NAME = "notify-nomi-run-failed"
#: Every notification automation ``--block`` creates, in the order ops read about them.
NOTIFICATION_NAMES = (
    AUTOMATION_NAME,
    EXPIRING_AUTOMATION_NAME,
    REJECTED_AUTOMATION_NAME,
    HELD_AUTOMATION_NAME,
    RUN_FAILED_AUTOMATION_NAME,
)
RUN_FAILED_EVENTS = frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"})

_SLUG = "{{ event.resource.name }}"
#: The event's named items as lines: ``- <external id>: <reason>`` (at most 20 are named).
_ITEM_LINES = (
    "{% for item in event.payload['items'] %}\n- {{ item['external_id'] }}: "
    "{{ item['reason'] or item.get('code', '') }}{% endfor %}"
)
_RUN_BUSINESS = (
    "{{ ((flow_run.parameters or {}).get('params') or {}).get('business') or 'every business' }}"
)


def _event_notification(
    name: str,
    description: str,
    event: str,
    resource_prefix: str,
    block_document_id: uuid.UUID,
    *,
    subject: str,
    body: str,
) -> AutomationCore:
    """An automation sending one notification through the block each time ``event`` happens."""
    return AutomationCore(
        name=name,
        description=description,
        trigger=EventTrigger(
            expect={event},
            match={"prefect.resource.id": f"{resource_prefix}*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=subject, body=body)],
    )


def expired_connection_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) telling ops a connection expired: reconnect it."""
    return _event_notification(
        AUTOMATION_NAME,
        "Tell ops at once that a business's Nomi connection needs a reconnect.",
        EXPIRED_EVENT,
        CONNECTION_RESOURCE_PREFIX,
        block_document_id,
        subject=f"Nomi connection expired: {_SLUG}",
        body=(
            f"The Nomi connection of {_SLUG} expired or was revoked; publishing for it has "
            "stopped (its items stay Ready). What to do: ask an admin of the business to run "
            f"reconnect-to-nomi for {_SLUG}. Detail: "
            "{{ event.payload.get('reason') or event.payload.get('detail') or '' }}"
        ),
    )


def expiring_connection_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) telling ops a consent ends soon: plan a reconnect."""
    return _event_notification(
        EXPIRING_AUTOMATION_NAME,
        "Tell ops (each daily check) that a business's Nomi consent ends within 14 days.",
        EVENT_CONNECTION_EXPIRING,
        CONNECTION_RESOURCE_PREFIX,
        block_document_id,
        subject=f"Nomi consent of {_SLUG} ends on {{{{ event.payload.consent_expires_on }}}}",
        body=(
            f"The Nomi consent of {_SLUG} ends on {{{{ event.payload.consent_expires_on }}}} "
            "(in {{ event.payload.days_to_consent_expiry }} days); publishing stops then. "
            f"What to do: before that day, ask an admin of the business to run "
            f"reconnect-to-nomi for {_SLUG} (a new consent lasts a year)."
        ),
    )


def rejected_items_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) telling ops Nomi rejected items in a publish run."""
    return _event_notification(
        REJECTED_AUTOMATION_NAME,
        "Tell ops once per publish run and business that Nomi rejected some items.",
        EVENT_ITEMS_REJECTED,
        BUSINESS_RESOURCE_PREFIX,
        block_document_id,
        subject=f"Nomi rejected {{{{ event.payload.count }}}} item(s) of {_SLUG}",
        body=(
            f"Nomi rejected {{{{ event.payload.count }}}} item(s) of {_SLUG} in a publish run; "
            "they are not retried:"
            f"{_ITEM_LINES}\n"
            f"What to do: correct each item (items edit, or fix the source and import it again) "
            f"so it is Ready, then publish it with publish-items-to-nomi for {_SLUG}."
        ),
    )


def held_items_automation(block_document_id: uuid.UUID) -> AutomationCore:
    """The automation (not yet saved) telling ops items wait in review for more than a day."""
    return _event_notification(
        HELD_AUTOMATION_NAME,
        "Tell ops (each daily check) that a business has items held in review over a day.",
        EVENT_ITEMS_HELD,
        BUSINESS_RESOURCE_PREFIX,
        block_document_id,
        subject=f"{{{{ event.payload.count }}}} item(s) of {_SLUG} held in review over a day",
        body=(
            f"{{{{ event.payload.count }}}} item(s) of {_SLUG} have waited in review for more "
            "than a day (oldest since {{ event.payload.oldest_since }}):"
            f"{_ITEM_LINES}\n"
            "What to do: answer each reason (a category or tax rate, confirm or map a new "
            "contact, a duplicate or lock-date check) with items edit or publish-items-to-nomi, "
            f"or archive the item; the publisher then takes it for {_SLUG}."
        ),
    )


def our_flow_names() -> tuple[str, ...]:
    """The names of every flow defined in the ``flows`` package (imported to find them)."""
    from prefect import Flow

    import flows

    names: set[str] = set()
    for module in pkgutil.iter_modules(flows.__path__):
        loaded = importlib.import_module(f"flows.{module.name}")
        names.update(value.name for value in vars(loaded).values() if isinstance(value, Flow))
    return tuple(sorted(names))


def run_failed_automation(
    block_document_id: uuid.UUID, flow_names: tuple[str, ...] | None = None
) -> AutomationCore:
    """The automation (not yet saved) telling ops a run of one of our flows failed or crashed."""
    return AutomationCore(
        name=RUN_FAILED_AUTOMATION_NAME,
        description="Tell ops at once that a run of a Nomi connector flow failed or crashed.",
        trigger=EventTrigger(
            expect=set(RUN_FAILED_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.name": list(flow_names or our_flow_names()),
            },
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=(
                    "Nomi connector run {{ flow_run.name }} {{ flow_run.state.name }} "
                    f"({_RUN_BUSINESS})"
                ),
                body=(
                    "The run {{ flow_run.name }} of {{ flow.name }} for "
                    f"{_RUN_BUSINESS} ended {{{{ flow_run.state.name }}}}: "
                    "{{ flow_run.state.message }}\n"
                    "What to do: open the run in the Prefect UI (Runs, {{ flow_run.name }}) and "
                    "read its last error. Nothing published is lost or doubled; a Crashed run's "
                    "claimed items come back on the next sweep. Fix the cause (a block, a "
                    "setting, Nomi down) and run the deployment again."
                ),
            )
        ],
    )


def notification_automations(block_document_id: uuid.UUID) -> list[AutomationCore]:
    """Every notification automation (not yet saved), all sending through one block."""
    return [
        expired_connection_automation(block_document_id),
        expiring_connection_automation(block_document_id),
        rejected_items_automation(block_document_id),
        held_items_automation(block_document_id),
        run_failed_automation(block_document_id),
    ]


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


def create_or_replace(block: str) -> dict[str, uuid.UUID]:
    """Create every notification automation for ``block``, replacing older ones of their names.

    Returns:
        Automation name -> its new id.
    """
    document_id = block_document_id(block)
    return {a.name: replace_automation(a) for a in notification_automations(document_id)}


def main(argv: list[str] | None = None) -> None:
    """Parse ``--block`` / ``--crash-zombies`` and create those automations."""
    parser = argparse.ArgumentParser(prog="python -m deployments.automations")
    parser.add_argument(
        "--block",
        help="send the notifications through this saved notification block: <type-slug>/<name> "
        "(e.g. custom-webhook/ops, slack-webhook/ops, sendgrid-email/ops)",
    )
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
