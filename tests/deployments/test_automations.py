"""The automations ops create: the five notifications through one block, crashed-run detection.

That each notification really arrives is shown by tests/flows/test_notifications.py.
"""

from __future__ import annotations

import uuid

import pytest

from deployments.automations import (
    AUTOMATION_NAME,
    HEARTBEAT_SECONDS,
    NOTIFICATION_NAMES,
    RUN_FAILED_AUTOMATION_NAME,
    ZOMBIE_AFTER_SECONDS,
    ZOMBIE_AUTOMATION_NAME,
    block_document_id,
    create_or_replace,
    main,
    our_flow_names,
)

pytestmark = pytest.mark.prefect


def test_automation_notifies_through_the_named_block_and_replaces_an_older_one(prefect_server):
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger

    name = f"ops-{uuid.uuid4().hex[:8]}"
    SlackWebhook(url="http://127.0.0.1:9/hook").save(name)
    first = create_or_replace(f"slack-webhook/{name}")
    second = create_or_replace(f"slack-webhook/{name}")
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(AUTOMATION_NAME)
    assert automation.id == second[AUTOMATION_NAME] != first[AUTOMATION_NAME]
    assert isinstance(automation.trigger, EventTrigger)
    assert automation.trigger.expect == {"nomi.connection.expired"}
    (action,) = automation.actions
    assert isinstance(action, SendNotification)
    assert action.block_document_id == block_document_id(f"slack-webhook/{name}")


EXPECTED = {
    "notify-nomi-connection-expired": ({"nomi.connection.expired"}, "nomi.connection.*"),
    "notify-nomi-connection-expiring": ({"nomi.connection.expiring"}, "nomi.connection.*"),
    "notify-nomi-items-rejected": ({"nomi.items.rejected"}, "nomi.business.*"),
    "notify-nomi-items-held": ({"nomi.items.held"}, "nomi.business.*"),
    "notify-nomi-run-failed": (
        {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
        "prefect.flow-run.*",
    ),
}


def test_the_command_creates_five_notifications_once_however_often_it_runs(prefect_server):
    """Re-running ``--block`` (even for another block) replaces each automation, never doubles."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger
    from prefect.events.schemas.events import ResourceSpecification

    blocks = [f"ops-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in blocks:
        CustomWebhookNotificationBlock(name=name, url="http://127.0.0.1:9/hook").save(name)
    main(["--block", f"custom-webhook/{blocks[0]}"])
    main(["--block", f"custom-webhook/{blocks[0]}"])
    main(["--block", f"custom-webhook/{blocks[1]}"])  # ops switch to another block

    assert set(NOTIFICATION_NAMES) == set(EXPECTED)
    chosen = block_document_id(f"custom-webhook/{blocks[1]}")
    with get_client(sync_client=True) as client:
        for name, (events, resource) in EXPECTED.items():
            (automation,) = client.read_automations_by_name(name)
            trigger = automation.trigger
            assert isinstance(trigger, EventTrigger)
            assert trigger.expect == events
            assert trigger.match.get("prefect.resource.id") == [resource]
            (action,) = automation.actions
            assert isinstance(action, SendNotification)
            assert action.block_document_id == chosen
            assert "{{ " in action.subject
            assert "What to do" in action.body
    with get_client(sync_client=True) as client:
        (failed,) = client.read_automations_by_name(RUN_FAILED_AUTOMATION_NAME)
    assert isinstance(failed.trigger, EventTrigger)
    assert isinstance(failed.trigger.match_related, ResourceSpecification)
    flows = failed.trigger.match_related.get("prefect.resource.name")
    assert flows is not None
    assert {"auto-publish-to-nomi", "connect-to-nomi", "verify-nomi-connection"} <= set(flows)
    assert set(flows) == set(our_flow_names())


def test_block_must_be_named_with_its_type():
    with pytest.raises(ValueError, match="type-slug"):
        block_document_id("ops-alerts")


def test_crash_zombies_creates_one_automation_that_leaves_paused_flows_alone(prefect_server):
    """What it watches; that it really crashes a dead run is shown by test_crash_recovery."""
    from prefect.client.orchestration import get_client
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger
    from prefect.events.schemas.events import ResourceSpecification

    from flows.auto_publish_to_nomi import auto_publish_to_nomi
    from flows.connect_to_nomi import connect_to_nomi
    from flows.reconnect_to_nomi import reconnect_to_nomi

    main(["--crash-zombies"])
    main(["--crash-zombies"])  # again: replaced, not doubled
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(ZOMBIE_AUTOMATION_NAME)
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == "Proactive"
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed"} <= trigger.expect
    assert trigger.within is not None
    assert trigger.within.total_seconds() == ZOMBIE_AFTER_SECONDS >= 3 * HEARTBEAT_SECONDS
    assert isinstance(trigger.match_related, ResourceSpecification)
    watched = trigger.match_related.get("prefect.resource.name")
    assert watched is not None
    assert auto_publish_to_nomi.name in watched
    assert "disconnect-from-nomi" in watched  # never pauses
    assert connect_to_nomi.name not in watched
    assert reconnect_to_nomi.name not in watched
    (action,) = automation.actions
    assert action.type == "change-flow-run-state"
    assert isinstance(action, ChangeFlowRunState)
    assert action.state == "CRASHED"


def test_the_command_asks_for_something_to_create(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "--block TYPE/NAME and/or --crash-zombies" in capsys.readouterr().err
