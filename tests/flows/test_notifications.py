"""Ops are told without looking: each notification arrives at a webhook ops chose.

A tiny HTTP receiver on 127.0.0.1 stands for ops' Slack or mail gateway. A
``CustomWebhookNotificationBlock`` points at it and ``python -m deployments.automations --block``
(``main``) creates the automations on the session's Prefect test server, whose triggers and
actions services run in the server process. Each situation is then caused for real through our
flows (the sandbox expires a consent, rejects an item; an item waits in review; a run fails) and
the test waits for its notification to reach the receiver.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.models import Connection, Item
from deployments.automations import NOTIFICATION_NAMES, main
from flows.auto_publish_to_nomi import auto_publish_to_nomi
from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection
from sandbox.seed import BRIGHT_SMILE, HARBOUR, NORTHWIND
from sandbox.testing import SandboxHandle
from tests.connector.publishing.test_publishing_world import Org, add_item, make_ready
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import params, prepare

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("fast_world")]

#: Generous: the machine is shared, and an event goes through the server's trigger and action
#: services before the notification is sent.
ARRIVAL_SECONDS = 120.0


class Receiver:
    """The notifications posted to the webhook: ``{"subject": ..., "body": ...}`` each."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def add(self, message: dict[str, str]) -> None:
        with self._lock:
            self.messages.append(message)

    def wait_for(self, *words: str, timeout: float = ARRIVAL_SECONDS) -> dict[str, str]:
        """The first notification whose subject and body together hold every word."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    text = f"{message.get('subject', '')}\n{message.get('body', '')}"
                    if all(word in text for word in words):
                        return message
            time.sleep(0.5)
        with self._lock:
            seen = [m.get("subject") for m in self.messages]
        raise AssertionError(f"no notification with {words} within {timeout:.0f}s; got {seen}")


@pytest.fixture(scope="module")
def receiver(prefect_server: None) -> Iterator[Receiver]:
    """A webhook receiver, a custom-webhook block for it and the automations sending to it."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client

    received = Receiver()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.add(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = f"ops-{uuid.uuid4().hex[:8]}"
    CustomWebhookNotificationBlock(
        name="nomi-ops",
        url=f"http://127.0.0.1:{server.server_address[1]}/hook",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    ).save(name)
    main(["--block", f"custom-webhook/{name}"])
    try:
        yield received
    finally:
        with get_client(sync_client=True) as client:
            for automation_name in NOTIFICATION_NAMES:
                for automation in client.read_automations_by_name(automation_name):
                    client.delete_automation(automation.id)
        server.shutdown()
        server.server_close()


def test_the_daily_check_tells_of_expired_and_expiring_consents_and_items_held_over_a_day(
    receiver: Receiver,
    nomi_app: str,
    sandbox: SandboxHandle,
    connector_db: str,
    tmp_path: Path,
    connect_business: Callable[..., ConnectedBusiness],
) -> None:
    held, _ = prepare(
        connect_business, nomi_app, connector_db, BRIGHT_SMILE, tmp_path, costs=0, sales=0,
        claims=0,
    )  # fmt: skip
    expiring = connect_business(HARBOUR)
    expired = connect_business(NORTHWIND)
    engine = make_engine(connector_db)
    org = Org(held.tenant_id)
    old_id, new_id = f"held-{uuid.uuid4().hex[:6]}", f"young-{uuid.uuid4().hex[:6]}"
    with Session(engine) as s:
        for external_id in (old_id, new_id):  # no category: the assessment holds them
            add_item(s, held.business_id, org, ItemKind.COST, external_id=external_id,
                     category_edit=None, contact_name="Brand New Supplier Ltd")  # fmt: skip
        s.commit()
        make_ready(s, held.business_id)
        items = s.exec(select(Item).where(Item.business_id == held.business_id)).all()
        assert {i.status for i in items} == {ItemStatus.REVIEW}
        old = s.exec(select(Item).where(col(Item.external_id) == old_id)).one()
        old.created_at = datetime.now(UTC) - timedelta(hours=30)  # imported 30 hours ago
        s.add(old)
        soon = s.get(Connection, expiring.connection_id)
        assert soon is not None
        soon.consent_expires_at = datetime.now(UTC) + timedelta(days=10, hours=1)
        s.add(soon)
        s.commit()
    engine.dispose()
    sandbox.fault("consent_expired", tenant_id=expired.tenant_id)

    verify_nomi_connection(VerifyParams(app_block=nomi_app))  # the daily run's defaults

    gone = receiver.wait_for("Nomi connection expired", expired.slug, "reconnect-to-nomi")
    assert "What to do" in gone["body"]
    ends_on = (datetime.now(UTC) + timedelta(days=10, hours=1)).date().isoformat()
    ending = receiver.wait_for("consent", expiring.slug, ends_on)
    assert "reconnect-to-nomi" in ending["body"]
    waiting = receiver.wait_for("held in review", held.slug)
    assert old_id in waiting["body"]
    assert new_id not in waiting["body"]  # in review for minutes, not a day
    assert waiting["subject"].startswith("1 item(s)")


def test_items_rejected_by_nomi_are_told_once_per_run_with_their_external_ids(
    receiver: Receiver,
    nomi_app: str,
    sandbox: SandboxHandle,
    connector_db: str,
    tmp_path: Path,
    connect_business: Callable[..., ConnectedBusiness],
) -> None:
    business, ids = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=3, sales=0,
        claims=0, auto_publish=True,
    )  # fmt: skip
    sandbox.fault(
        "validation",
        tenant_id=business.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        count=2,
        params={"code": "totals_mismatch"},
    )

    summary = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))

    assert summary.businesses[business.slug].rejected == 2
    engine = make_engine(connector_db)
    with Session(engine) as s:
        rejected = [
            i.external_id
            for i in s.exec(select(Item).where(col(Item.id).in_(ids["cost"])))
            if i.status != ItemStatus.PUBLISHED
        ]
    engine.dispose()
    assert len(rejected) == 2
    told = receiver.wait_for("Nomi rejected 2 item(s)", business.slug, *rejected)
    assert "totals_mismatch" in told["body"]
    assert "publish-items-to-nomi" in told["body"]


def test_a_failed_or_crashed_run_of_our_flows_is_told(
    receiver: Receiver, connector_db: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    slug = f"biz-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ValueError):  # no such NomiApp block: the run fails
        verify_nomi_connection(VerifyParams(business=slug, app_block=f"missing-{slug}"))

    failed = receiver.wait_for("Failed", f"verify-{slug}", slug)
    assert "verify-nomi-connection" in failed["body"]

    # A crash: what the zombie automation (or a dying engine) records on a run of our flow.
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            verify_nomi_connection,
            name=f"verify-crash-{slug}",
            parameters={"params": {"business": slug}},
        )
        client.set_flow_run_state(run.id, Crashed(message="the worker running it died"), force=True)

    crashed = receiver.wait_for("Crashed", f"verify-crash-{slug}")
    assert "the worker running it died" in crashed["body"]
