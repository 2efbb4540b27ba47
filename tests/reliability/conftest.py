"""Helpers of the reliability tests: many connected businesses full of Ready items.

``build_world`` adds sandbox organisations (``POST /_admin/tenants``), connects a business to each
through the consent forms, mirrors its lists and fills it with Ready items of every kind;
``check_exactly_once`` then compares what Nomi holds with what the connector says it published.

Test modules import the flow-test fixtures they use (``sandbox``, ``connector_db``, ``nomi_app``,
``connect_business``) from ``tests/flows/conftest.py`` and ask for ``fast_publishing``; nothing
here is autouse, so the other reliability tests in this folder are not affected.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from blocks.app import NomiApp
from connector.items.context import build_context
from connector.publishing.queue import Selection, select_candidates
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt
from connector.store.models import Connection, Item
from flows.auto_publish_to_nomi import AutoPublishParams, PublishSummary, auto_publish_to_nomi
from sandbox.testing import SandboxHandle
from tasks.runtime import NomiLimits, nomi_client
from tests.connector.factories import make_contact_rule
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    bank_method,
    make_ready,
    mirror_lists,
    write_image,
)
from tests.flows.conftest import ACCOUNTANT_EMAIL, ConnectedBusiness

#: Per-organisation limits: Nomi's shape (a minute window, 5 in flight) raised to keep tests fast;
#: the client's throttle is told the same numbers.
PER_MINUTE = 6000
LIMITS = NomiLimits(per_minute=PER_MINUTE, concurrent=5)
SANDBOX_LIMITS = {"per_minute": PER_MINUTE, "concurrent": 5, "app_per_minute": 100_000}

#: Contacts of an added organisation (seeded like Bright Smile).
SUPPLIER = "Staples UK"
CLAIM_SUPPLIER = "Amazon EU Sarl"
CUSTOMER = "NHS England"
CLAIMANT = "owen@brightsmile.example"
NEW_SUPPLIERS = ("Reliable Widgets Ltd", "Faultless Paper Co", "Steady Couriers Ltd")


@pytest.fixture
def fast_publishing(
    sandbox: SandboxHandle, connector_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flows read this test's database; fresh client throttles; limits raised on both sides."""
    import nomi.throttle

    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    monkeypatch.setattr(nomi.throttle, "_registry", nomi.throttle.ThrottleRegistry())
    sandbox.admin.patch("/settings", json=SANDBOX_LIMITS).raise_for_status()


@dataclass
class World:
    """One connected business and the ids of its items, by what Nomi must end up holding."""

    business: ConnectedBusiness
    claim_images: bool
    costs: list[uuid.UUID] = field(default_factory=list)
    claims: list[uuid.UUID] = field(default_factory=list)
    sales: list[uuid.UUID] = field(default_factory=list)
    supplier_credits: list[uuid.UUID] = field(default_factory=list)
    customer_credits: list[uuid.UUID] = field(default_factory=list)
    with_image: set[uuid.UUID] = field(default_factory=set)
    paid: set[uuid.UUID] = field(default_factory=set)
    new_supplier_items: dict[str, int] = field(default_factory=dict)
    #: Items with several lines, and how many their Nomi record must carry.
    line_counts: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Items in a currency other than the base (GBP), and that currency.
    currencies: dict[uuid.UUID, str] = field(default_factory=dict)

    @property
    def all_ids(self) -> list[uuid.UUID]:
        """Every item of the business."""
        return self.costs + self.claims + self.sales + self.supplier_credits + self.customer_credits

    @property
    def expected_attachments(self) -> set[uuid.UUID]:
        """Items whose Nomi record must carry the document image."""
        claims = set(self.claims)
        costs = {i for i in self.with_image if i not in claims}
        return costs | (claims & self.with_image if self.claim_images else set())


def add_organisation(sandbox: SandboxHandle, name: str) -> str:
    """Add a sandbox organisation the accountant may grant; returns its tenant id."""
    created = sandbox.admin.post("/tenants", json={"name": name, "grant_to": [ACCOUNTANT_EMAIL]})
    created.raise_for_status()
    return str(created.json()["id"])


def build_world(
    sandbox: SandboxHandle,
    connect: Callable[..., ConnectedBusiness],
    app_block: str,
    database_url: str,
    folder: Path,
    *,
    businesses: int,
    items_per_business: int,
    prefix: str = "Reliability",
) -> list[World]:
    """Connect ``businesses`` new organisations and give each ``items_per_business`` Ready items.

    Per ten items: four costs (one with an image; one a three-line EUR cost with no rate; one a
    supplier credit note with an image; one to a supplier Nomi does not have yet), three sales
    items (a paid one into the linked current account; a customer credit note; a paid
    three-line EUR invoice with the document's rate) and three expense claims with an image (a
    supplier rule auto-publishes them; one in USD). Every second business publishes images with
    expense claims, the others do not.
    """
    app = cast(NomiApp, NomiApp.load(app_block))
    engine = make_engine(database_url)
    worlds: list[World] = []
    try:
        for b in range(businesses):
            name = f"{prefix} {b:02d} {uuid.uuid4().hex[:4]} Ltd"
            add_organisation(sandbox, name)
            claim_images = b % 2 == 0
            business = connect(
                name,
                warn_new_supplier=False,
                auto_publish=True,
                publish_images_with_expense_claims=claim_images,
            )
            worlds.append(
                _fill(
                    engine,
                    app,
                    business,
                    claim_images,
                    folder / business.slug,
                    items_per_business,
                )
            )
    finally:
        engine.dispose()
    return worlds


def _fill(
    engine: Engine,
    app: NomiApp,
    business: ConnectedBusiness,
    claim_images: bool,
    folder: Path,
    count: int,
) -> World:
    """Mirror the organisation's lists and add ``count`` items of every kind, then assess them."""
    world = World(business=business, claim_images=claim_images)
    org = Org(business.tenant_id)
    image = str(write_image(folder))
    with Session(engine, expire_on_commit=False) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        with nomi_client(app, connection, limits=LIMITS) as nomi:
            mirror_lists(s, nomi, connection.id)
        make_contact_rule(s, connection=connection, name=CLAIM_SUPPLIER, auto_publish=True)
        method = bank_method(s, business.business_id, org)
        pdf = {"image_path": image, "image_content_type": "application/pdf"}
        for n in range(count):
            _add_slot(s, world, org, n, method, pdf)
        s.commit()
        make_ready(s, business.business_id)
        statuses = s.exec(select(Item.status).where(Item.business_id == business.business_id)).all()
        assert set(statuses) == {ItemStatus.READY}, "every item must start Ready"
    return world


def _lines(org: Org, *codes: str) -> list[dict[str, Any]]:
    """Three lines adding up to 120.00 at the standard rate, with these category codes."""
    amounts = (("50.00", "10.00"), ("25.00", "5.00"), ("25.00", "5.00"))
    return [
        {
            "net": net,
            "tax": tax,
            "description": f"line {n + 1}",
            "category_edit": org.category(code),
            "tax_rate_edit": org.tax_rate("STD20"),
        }
        for n, ((net, tax), code) in enumerate(zip(amounts, codes, strict=True))
    ]


def _add_slot(
    s: Session, world: World, org: Org, n: int, method: uuid.UUID, pdf: dict[str, Any]
) -> None:
    """The ``n``-th item of the mix (its slot is ``n % 10``), noted in ``world``."""
    business_id, slot = world.business.business_id, n % 10
    if slot < 4:
        supplier = NEW_SUPPLIERS[n % 3] if slot == 3 else SUPPLIER
        extra: dict[str, Any] = pdf if slot in (0, 2) else {}
        if slot == 1:
            extra = {"currency": "EUR", "lines": _lines(org, "453", "489", "453")}
        if slot == 2:
            extra = {**pdf, "document_type": "credit_note"}
        item = add_item(s, business_id, org, ItemKind.COST, contact_name=supplier, **extra)
        (world.supplier_credits if slot == 2 else world.costs).append(item.id)
        if "image_path" in extra:
            world.with_image.add(item.id)
        if slot == 3:
            world.new_supplier_items[supplier] = world.new_supplier_items.get(supplier, 0) + 1
    elif slot < 7:
        paid: dict[str, Any] = {"paid": True, "payment_method_id": method} if slot != 5 else {}
        if slot == 5:
            paid = {"document_type": "credit_note"}
        if slot == 6:
            paid |= {
                "currency": "EUR",
                "exchange_rate": Decimal("0.853412"),
                "lines": _lines(org, "200", "260", "200"),
            }
        item = add_item(s, business_id, org, ItemKind.SALES, contact_name=CUSTOMER, **paid)
        (world.customer_credits if slot == 5 else world.sales).append(item.id)
        if "paid" in paid:
            world.paid.add(item.id)
    else:
        foreign = {"currency": "USD"} if slot == 9 else {}
        item = add_item(
            s,
            business_id,
            org,
            ItemKind.EXPENSE_CLAIM,
            contact_name=CLAIM_SUPPLIER,
            claimant_email=CLAIMANT,
            **pdf,
            **foreign,
        )
        world.claims.append(item.id)
        world.with_image.add(item.id)
    if item.lines:
        world.line_counts[item.id] = len(item.lines)
    if item.currency != "GBP":
        world.currencies[item.id] = item.currency


def run_params(app_block: str, **values: Any) -> AutoPublishParams:
    """Auto-publish parameters of these tests (short retry delays, the raised limits)."""
    base: dict[str, Any] = {
        "app_block": app_block,
        "batch_size": 100,
        "batch_retry_delay_seconds": 0.5,
        "limits": LIMITS,
    }
    return AutoPublishParams(**(base | values))


def auto_eligible_left(database_url: str, worlds: list[World]) -> int:
    """Ready items an auto-publish sweep would still take, over every business."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            return sum(
                len(
                    select_candidates(
                        s,
                        w.business.business_id,
                        build_context(s, w.business.business_id),
                        Selection(auto=True),
                        limit=100_000,
                    )
                )
                for w in worlds
            )
    finally:
        engine.dispose()


@dataclass
class Sweeps:
    """The scheduled sweeps it took to publish everything."""

    summaries: list[PublishSummary] = field(default_factory=list)
    failed_runs: int = 0
    seconds: float = 0.0

    @property
    def published(self) -> int:
        """Items published over all sweeps."""
        return sum(s.published for s in self.summaries)


def sweep_until_done(
    app_block: str, database_url: str, worlds: list[World], *, max_runs: int = 5, **values: Any
) -> Sweeps:
    """Run auto-publish like the 5-minute schedule does, until no item is left to take.

    A run that ends Failed (a batch still failing after its retries) or stopped a business on the
    daily limit is followed by the next "scheduled" run, as in production.
    """
    sweeps = Sweeps()
    started = time.monotonic()
    for _ in range(max_runs):
        state = auto_publish_to_nomi(run_params(app_block, **values), return_state=True)
        if state.is_completed():
            sweeps.summaries.append(state.result())
        else:
            sweeps.failed_runs += 1
        if auto_eligible_left(database_url, worlds) == 0:
            break
    sweeps.seconds = time.monotonic() - started
    return sweeps


def records_by_source(sandbox: SandboxHandle, tenant_id: str, kind: str) -> dict[str, list[Any]]:
    """The tenant's records of ``kind`` created through the API, grouped by ``source_id``."""
    response = sandbox.admin.get("/records", params={"tenant_id": tenant_id, "kind": kind})
    response.raise_for_status()
    grouped: dict[str, list[Any]] = {}
    for record in response.json():
        grouped.setdefault(str(record.get("source_id")), []).append(record)
    return grouped


def check_exactly_once(sandbox: SandboxHandle, database_url: str, worlds: list[World]) -> None:
    """Assert Nomi holds every item exactly once, with its image and payment as the settings say.

    Also checks that history has a successful record attempt for each published item.
    """
    duplicates = sandbox.admin.get("/duplicates").json()
    assert duplicates == {"expenses": {}, "sales_invoices": {}}
    engine = make_engine(database_url)
    try:
        for world in worlds:
            _check_world(sandbox, engine, world)
    finally:
        engine.dispose()


def _check_world(sandbox: SandboxHandle, engine: Engine, world: World) -> None:
    tenant = world.business.tenant_id
    expenses = records_by_source(sandbox, tenant, "expense")
    invoices = records_by_source(sandbox, tenant, "sales_invoice")
    supplier_credits = records_by_source(sandbox, tenant, "supplier_credit_note")
    customer_credits = records_by_source(sandbox, tenant, "customer_credit_note")
    with Session(engine) as s:
        items = {
            i.id: i
            for i in s.exec(select(Item).where(Item.business_id == world.business.business_id))
        }
        attempts = s.exec(
            select(PublishAttempt).where(PublishAttempt.business_id == world.business.business_id)
        ).all()
    not_published = {
        str(i.id): (i.status, i.last_error_code, i.review_reasons)
        for i in items.values()
        if i.status != ItemStatus.PUBLISHED
    }
    assert not not_published, f"{world.business.slug}: not published: {not_published}"
    assert len(expenses) == len(world.costs) + len(world.claims)
    assert len(invoices) == len(world.sales)
    assert len(supplier_credits) == len(world.supplier_credits)
    assert len(customer_credits) == len(world.customer_credits)
    kinds = (
        (world.costs + world.claims, expenses),
        (world.sales, invoices),
        (world.supplier_credits, supplier_credits),
        (world.customer_credits, customer_credits),
    )
    for ids, by_source in kinds:
        for item_id in ids:
            [record] = by_source[str(item_id)]
            assert items[item_id].nomi_record_id == record["id"]
            has_image = len(record.get("attachments") or []) == 1
            assert has_image == (item_id in world.expected_attachments), (item_id, record)
            assert len(record.get("attachments") or []) <= 1
            assert record["currency"] == world.currencies.get(item_id, "GBP"), record
            if item_id in world.line_counts:
                assert len(record["lines"]) == world.line_counts[item_id], record
    for item_id in world.sales + world.customer_credits:
        [record] = (invoices | customer_credits)[str(item_id)]
        assert len(record.get("payments") or []) == (1 if item_id in world.paid else 0)
        assert items[item_id].payment_recorded == (item_id in world.paid)
    created = sandbox.admin.get("/records", params={"tenant_id": tenant, "kind": "supplier"}).json()
    names = sorted(r["name"] for r in created)
    assert names == sorted(world.new_supplier_items), "each new supplier is created once"
    succeeded = {
        a.item_id
        for a in attempts
        if a.step in ("expense", "sales_invoice", "supplier_credit_note", "customer_credit_note")
        and a.outcome in ("published", "recovered")
        and a.nomi_record_id
    }
    assert succeeded == set(world.all_ids), "each published item has a successful record attempt"
    assert len(attempts) >= len(world.all_ids)


def attempt_outcomes(database_url: str) -> dict[str, int]:
    """How many attempt rows ended with each outcome (all businesses)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            outcomes = s.exec(select(PublishAttempt.outcome)).all()
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def attempt_keys(database_url: str, outcomes: tuple[str, ...]) -> set[str]:
    """Idempotency keys of attempt rows that ended with one of ``outcomes``."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            keys = s.exec(
                select(PublishAttempt.idempotency_key).where(
                    col(PublishAttempt.outcome).in_(outcomes)
                )
            ).all()
    finally:
        engine.dispose()
    return {k for k in keys if k}


def journal(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    """Every request the sandbox saw since the last stats reset (oldest first)."""
    response = sandbox.admin.get("/requests", params={"limit": 50_000})
    response.raise_for_status()
    return list(response.json())


@pytest.fixture
def world_folder(tmp_path: Path) -> Path:
    """A folder for the document images of a test's businesses."""
    folder = tmp_path / "images"
    folder.mkdir()
    return folder
