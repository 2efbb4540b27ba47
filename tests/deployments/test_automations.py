"""The optional notification automation on nomi.connection.expired."""

from __future__ import annotations

import uuid

import pytest

from deployments.automations import AUTOMATION_NAME, block_document_id, create_or_replace

pytestmark = pytest.mark.prefect


def test_automation_notifies_through_the_named_block_and_replaces_an_older_one(prefect_server):
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client

    name = f"ops-{uuid.uuid4().hex[:8]}"
    SlackWebhook(url="http://127.0.0.1:9/hook").save(name)  # type: ignore[arg-type]
    first = create_or_replace(f"slack-webhook/{name}")
    second = create_or_replace(f"slack-webhook/{name}")
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(AUTOMATION_NAME)
    assert automation.id == second != first
    assert automation.trigger.expect == {"nomi.connection.expired"}
    (action,) = automation.actions
    assert action.block_document_id == block_document_id(f"slack-webhook/{name}")


def test_block_must_be_named_with_its_type():
    with pytest.raises(ValueError, match="type-slug"):
        block_document_id("ops-alerts")
