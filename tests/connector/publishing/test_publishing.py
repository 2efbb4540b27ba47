"""Publishing to the sandbox over real HTTP: each kind, contacts, faults, crashes, rejections."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from connector.items.choices import allow_retry
from connector.items.context import build_context
from connector.publishing.batch import BatchResult, publish_batch
from connector.publishing.book import PublishBook
from connector.publishing.pipeline import (
    CONNECTION_EXPIRED,
    STOP_CONNECTION_LOST,
    TRANSIENT,
)
from connector.publishing.queue import (
    Selection,
    claim_next,
    recover_stale,
    select_candidates,
)
from connector.rules.vocabulary import ConnectionStatus, ItemKind, ItemStatus
from connector.store.db import make_engine, migrate
from connector.store.history_tables import PublishAttempt
from connector.store.models import Connection, Item, Supplier
from nomi.client import NomiClient
from nomi.retry import RetryPolicy
from nomi.tokens import RefreshingTokenProvider
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.factories import make_business, make_connection
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    bank_method,
    duplicates,
    make_ready,
    mirror_lists,
    records,
    set_settings,
    write_image,
)
from tests.nomi.conftest import ORG, consent, make_oauth

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.1, max_retry_after=3.0)


@dataclass
class World:
    """Bright Smile connected, lists mirrored, an empty item table."""

    sandbox: SandboxHandle
    engine: Engine
    nomi: NomiClient
    org: Org
    business_id: uuid.UUID
    connection_id: uuid.UUID
    images: Path

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def publish(
        self, *, batch_size: int = 50, workers: int = 3, nomi: NomiClient | None = None
    ) -> BatchResult:
        """Claim the Ready items and publish them as one batch."""
        run_id = uuid.uuid4()
        with self.session() as s:
            ctx = build_context(s, self.business_id)
            ready = s.exec(
                select(Item.id).where(
                    Item.business_id == self.business_id, Item.status == ItemStatus.READY
                )
            ).all()
            ids = list(ready)
            items = claim_next(
                s,
                run_id=run_id,
                business_id=self.business_id,
                candidates=ids,
                batch_size=batch_size,
            )
        book = PublishBook(self.connection_id)
        client = nomi or self.nomi
        return publish_batch(self.engine, client, items, run_id, ctx, book=book, workers=workers)

    def item(self, item_id: uuid.UUID) -> Item:
        with self.session() as s:
            found = s.get(Item, item_id)
            assert found is not None
            return found

    def records(self, kind: str) -> list[dict[str, Any]]:
        return records(self.sandbox, self.org.tenant_id, kind)

    def fault(self, name: str, **spec: Any) -> None:
        self.sandbox.fault(name, tenant_id=self.org.tenant_id, **spec)

    def add(self, kind: str, **values: Any) -> uuid.UUID:
        with self.session() as s:
            item = add_item(s, self.business_id, self.org, kind, **values)
            s.commit()
            return item.id

    def ready(self) -> None:
        with self.session() as s:
            make_ready(s, self.business_id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = SandboxSettings(test_mode=True, per_minute=0, concurrent=0, token_per_minute=0)
    with running_sandbox(settings) as sandbox:
        oauth = make_oauth(sandbox)
        tenant_id = sandbox.tenant_id(ORG)
        code, verifier = consent(sandbox, oauth, tenant_id)
        tokens = oauth.exchange_code(code, verifier)
        engine = make_engine(f"sqlite:///{tmp_path}/connector.db")
        migrate(engine)
        nomi = NomiClient(
            sandbox.base_url, tenant_id, RefreshingTokenProvider(oauth, tokens), retry=FAST
        )
        with Session(engine, expire_on_commit=False) as s:
            business = make_business(s)
            connection = make_connection(s, business=business, nomi_tenant_id=tenant_id)
            s.commit()
            mirror_lists(s, nomi, connection.id)
            set_settings(s, connection.id, warn_new_supplier=False)
            ids = business.id, connection.id
        try:
            yield World(sandbox, engine, nomi, Org(tenant_id), *ids, tmp_path / "images")
        finally:
            nomi.close()
            oauth.close()
            engine.dispose()


def attempts(world: World, item_id: uuid.UUID) -> list[PublishAttempt]:
    with world.session() as s:
        return list(
            s.exec(
                select(PublishAttempt)
                .where(PublishAttempt.item_id == item_id)
                .order_by(PublishAttempt.at, PublishAttempt.attempt_no)  # type: ignore[arg-type]
            )
        )


def test_cost_item_with_image_becomes_one_expense_with_its_image(world: World) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()

    result = world.publish()

    assert result.count("published") == 1
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    assert item.image_error is None
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert expense.id == item.nomi_record_id
    assert expense.kind == "company"
    assert str(expense.total) == "120.00"
    assert [a.content_type for a in expense.attachments] == ["application/pdf"]
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert steps == [("expense", "published"), ("attachment", "published")]
    assert all(a.idempotency_key for a in attempts(world, item_id))


@pytest.mark.parametrize("with_images", [True, False])
def test_expense_claim_carries_the_claimant_and_its_image_only_when_the_setting_is_on(
    world: World, with_images: bool
) -> None:
    with world.session() as s:
        set_settings(s, world.connection_id, publish_images_with_expense_claims=with_images)
    image = write_image(world.images)
    item_id = world.add(
        ItemKind.EXPENSE_CLAIM, image_path=str(image), image_content_type="application/pdf"
    )
    world.ready()

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert expense.kind == "claim"
    owen = next(u for u in world.nomi.list_users() if u.email == "owen@brightsmile.example")
    assert expense.user_id == owen.id
    assert len(expense.attachments) == (1 if with_images else 0)
    assert item.image_published is with_images


def test_paid_sales_item_gets_a_payment_into_the_linked_bank_account(world: World) -> None:
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    paid = world.add(ItemKind.SALES, paid=True, payment_method_id=method)
    unpaid = world.add(ItemKind.SALES)
    world.ready()

    world.publish()

    paid_item, unpaid_item = world.item(paid), world.item(unpaid)
    assert paid_item.status == unpaid_item.status == ItemStatus.PUBLISHED
    assert paid_item.payment_recorded
    assert not unpaid_item.payment_recorded
    invoice = world.nomi.find_sales_invoice_by_source_id(str(paid))
    assert invoice is not None
    assert invoice.status == "PAID"
    assert [p.bank_account_id for p in invoice.payments] == [world.org.bank()]
    other = world.nomi.find_sales_invoice_by_source_id(str(unpaid))
    assert other is not None
    assert other.payments == []
    assert other.status == "AUTHORISED"
    assert len(world.records("payment")) == 1


def test_two_items_of_one_new_supplier_create_one_supplier(world: World) -> None:
    first = world.add(ItemKind.COST, contact_name="Brand New Widgets Ltd")
    second = world.add(ItemKind.COST, contact_name="Brand New Widgets Limited")
    world.ready()

    world.publish(workers=2)

    created = world.records("supplier")
    assert len(created) == 1
    a, b = world.item(first), world.item(second)
    assert a.status == b.status == ItemStatus.PUBLISHED
    assert a.resolved_contact_nomi_id == b.resolved_contact_nomi_id
    with world.session() as s:
        mirrored = s.exec(
            select(Supplier).where(Supplier.nomi_id == a.resolved_contact_nomi_id)
        ).all()
    assert len(mirrored) == 1


def test_warn_new_supplier_holds_the_item_in_review(world: World) -> None:
    with world.session() as s:
        set_settings(s, world.connection_id, warn_new_supplier=True)
    held = world.add(ItemKind.COST, contact_name="Unheard Of Supplies")
    world.ready()
    assert world.item(held).status == ItemStatus.REVIEW
    # A stale ready status (assessed before the setting changed) is caught at publish time.
    with world.session() as s:
        item = s.get(Item, held)
        assert item is not None
        item.status, item.review_reasons = ItemStatus.READY, []
        s.add(item)
        s.commit()

    result = world.publish()

    assert result.count("held") == 1
    item = world.item(held)
    assert item.status == ItemStatus.REVIEW
    assert any("new supplier" in r for r in item.review_reasons)
    assert world.records("supplier") == []
    assert world.records("expense") == []


def test_rejection_is_recorded_and_not_taken_by_auto_publish_until_retry_is_allowed(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault(
        "validation",
        method="POST",
        path="/api/v1/expenses",
        count=1,
        params={"code": "period_locked"},
    )

    result = world.publish()

    assert result.count("rejected") == 1
    item = world.item(item_id)
    assert item.status == ItemStatus.READY
    assert item.last_error_code == "period_locked"
    assert item.last_error_message
    assert item.publish_generation == 2
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        set_settings(s, world.connection_id, auto_publish=True)
        ctx = build_context(s, world.business_id)
        assert select_candidates(s, world.business_id, ctx, Selection(), limit=10) == []
        assert allow_retry(s, [item_id]) == 1
        assert select_candidates(s, world.business_id, ctx, Selection(), limit=10) == [item_id]


def test_transient_errors_are_retried_by_the_client_and_publish_once(world: World) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(3)]
    world.ready()
    world.fault(
        "server_error", method="POST", path="/api/v1/expenses", count=1, params={"status": 503}
    )
    world.fault("rate_limit_concurrent", method="POST", path="/api/v1/expenses", count=1)

    result = world.publish(workers=1)

    assert result.count("published") == 3
    assert all(world.item(i).status == ItemStatus.PUBLISHED for i in ids)
    assert len(world.records("expense")) == 3
    assert duplicates(world.sandbox)["expenses"] == {}


def test_commit_then_drop_on_the_create_leaves_exactly_one_record(world: World) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("commit_then_drop", method="POST", path="/api/v1/expenses", count=1)

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1
    assert duplicates(world.sandbox)["expenses"] == {}


def test_commit_then_drop_beyond_the_clients_retries_is_looked_up_by_source_id(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("commit_then_drop", method="POST", path="/api/v1/expenses", count=1)
    impatient = NomiClient(
        world.sandbox.base_url, world.org.tenant_id, world.nomi._tokens, retry=RetryPolicy(1)
    )

    first = world.publish(nomi=impatient)

    assert first.stopped == "transient"
    assert world.item(item_id).last_error_code == "outcome_unknown"
    world.sandbox.clear_faults()
    # The idempotency key would replay; expire it so only the source_id look-up can save us.
    world.sandbox.admin.post("/clock/advance", json={"seconds": 2 * 86400}).raise_for_status()
    second = world.publish()

    assert second.count("published") == 1
    assert len(world.records("expense")) == 1
    assert ("expense", "recovered") in [(a.step, a.outcome) for a in attempts(world, item_id)]


def test_a_crash_after_the_create_then_stale_recovery_publishes_one_record(world: World) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    dead_run = uuid.uuid4()
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        [item] = claim_next(
            s, run_id=dead_run, business_id=world.business_id, candidates=[item_id], batch_size=5
        )
        # The dead run created the record (same key and body as a real run), then crashed.
        from connector.items.context import facts_from_item
        from connector.publishing.outbox import idempotency_key
        from connector.publishing.payloads import expense_body
        from connector.rules.engine import resolve

        res = resolve(facts_from_item(item), ctx)
        key = idempotency_key(item.id, item.publish_generation, "expense")
        body = expense_body(item, res, contact_id=res.contact_id, user_id=None)
        world.nomi.create_expense(body, key)
    world.sandbox.admin.post("/clock/advance", json={"seconds": 2 * 86400}).raise_for_status()
    with world.session() as s:
        recovered = recover_stale(s, older_than=timedelta(seconds=0), run_id=uuid.uuid4())
    assert [r.id for r in recovered] == [item_id]

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1
    assert duplicates(world.sandbox)["expenses"] == {}


def test_attachment_failing_once_after_create_ends_attached(world: World) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()
    world.fault("attachment_fail_once", method="PUT", count=1)

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert len(expense.attachments) == 1


def test_attachment_too_large_publishes_the_record_and_flags_the_item(world: World) -> None:
    world.sandbox.admin.patch("/settings", json={"max_attachment_bytes": 100}).raise_for_status()
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert not item.image_published
    assert item.image_error is not None
    assert "attachment_too_large" in item.image_error
    assert len(world.records("expense")) == 1


def test_marking_the_connection_expired_waits_for_a_write_committed_meanwhile(
    world: World,
) -> None:
    """Publishing's other writers commit all the time. Marking the connection expired takes its
    turn (busy timeout) instead of failing at once ("database is locked") because it read the
    connection first and another connection committed before its write."""
    from connector.connections.consent import mark_connection_expired

    with commit_elsewhere_before_first_write(world.engine) as errors, world.session() as s:
        mark_connection_expired(s, world.business_id, "consent expired")
        s.commit()
    assert errors == []
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED
        assert connection.last_error == "consent expired"


def test_marking_the_connection_expired_cuts_a_long_reason_for_ops(world: World) -> None:
    from connector.connections.consent import mark_connection_expired

    reason = "Nomi refused the connection: " + "x" * 600
    with world.session() as s:
        mark_connection_expired(s, world.business_id, reason)
        s.commit()
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED
        assert connection.last_error == reason[:500]


def test_connection_lost_mid_batch_gives_every_item_back_ready(world: World) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(4)]
    world.ready()
    world.fault("consent_expired", count=None)

    result = world.publish(workers=1)

    assert result.stopped == STOP_CONNECTION_LOST
    for item_id in ids:
        item = world.item(item_id)
        assert item.status == ItemStatus.READY
        assert item.last_error_code == CONNECTION_EXPIRED
        assert item.claimed_by_run is None
    assert world.records("expense") == []
    with world.session() as s:
        from connector.connections.consent import mark_connection_expired

        mark_connection_expired(s, world.business_id, "consent expired")
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED


def test_a_zero_rated_sale_publishes_no_tax_whatever_was_extracted(world: World) -> None:
    """Issue 15: 0.11 with 0.01 extracted at EXEMPT (0%) published 0.01 tax; now 0 and a note."""
    item_id = world.add(
        ItemKind.SALES,
        total=Decimal("0.11"),
        tax_amount=Decimal("0.01"),
        tax_rate_edit=world.org.tax_rate("EXEMPT"),
    )
    world.ready()

    result = world.publish()

    assert result.count("published") == 1, result
    (outcome,) = result.outcomes
    assert any("0.01 is not published" in flag for flag in outcome.flags), outcome.flags
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.tax_amount == Decimal("0.01")  # the extracted amount is kept on the item
    invoice = world.nomi.find_sales_invoice_by_source_id(str(item_id))
    assert invoice is not None
    assert [(str(line.amount), str(line.tax_amount)) for line in invoice.lines] == [
        ("0.11", "0.00")
    ]


def test_a_token_rejected_twice_mid_batch_is_refreshed_and_published_not_expired(
    world: World,
) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(3)]
    world.ready()
    # Two rejections of fresh tokens in a row (a token expiring in flight on a busy machine):
    # not Nomi's word that the connection is gone.
    world.fault("token_rejected", method="POST", path="/api/v1/expenses", count=2)

    result = world.publish(workers=1)

    assert result.stopped is None, result.stop_message
    assert result.count("published") == 3
    assert all(world.item(i).status == ItemStatus.PUBLISHED for i in ids)
    assert len(world.records("expense")) == 3
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.CONNECTED


def test_a_token_rejected_after_every_fresh_refresh_is_transient_and_published_later(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("token_rejected", method="POST", path="/api/v1/expenses", count=None)

    result = world.publish(workers=1)

    assert result.stopped != STOP_CONNECTION_LOST
    item = world.item(item_id)
    assert item.status == ItemStatus.READY
    assert item.last_error_code == TRANSIENT
    with world.session() as s:
        attempts = s.exec(select(PublishAttempt).where(PublishAttempt.item_id == item_id)).all()
        connection = s.get(Connection, world.connection_id)
    assert [a.error_code for a in attempts] == [TRANSIENT]
    assert connection is not None
    assert connection.status == ConnectionStatus.CONNECTED
    assert world.records("expense") == []

    world.sandbox.clear_faults()
    again = world.publish(workers=1)

    assert again.count("published") == 1
    assert world.item(item_id).status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1
