"""Helpers for publishing tests: a connected business whose lists are mirrored from the sandbox.

No tests here; the library tests (``World`` and its ``world`` fixture: the sandbox over real HTTP)
and ``tests/flows/test_publish*.py`` (flows) use these helpers. ``mirror_lists`` stands in for the
sync flow: it copies the sandbox's five lists through the client into our tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from connector.items.assess import reassess
from connector.items.context import build_context
from connector.publishing.batch import BatchResult, publish_batch
from connector.publishing.book import PublishBook
from connector.publishing.queue import claim_next
from connector.rules.names import normalise_name
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine, migrate
from connector.store.history_tables import PublishAttempt
from connector.store.models import (
    BankAccount,
    Category,
    ConnectionSettings,
    Customer,
    Item,
    PaymentMethod,
    Supplier,
    TaxRate,
)
from nomi.client import NomiClient
from nomi.retry import RetryPolicy
from nomi.tokens import RefreshingTokenProvider
from sandbox.seed import stable_id
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox
from tests.connector.factories import make_business, make_connection, make_item
from tests.nomi.conftest import ORG, consent, make_oauth

PDF = b"%PDF-1.4\n% test document\n" + b"0" * 256


def mirror_lists(session: Session, nomi: NomiClient, connection_id: uuid.UUID) -> None:
    """Copy the organisation's suppliers, customers, categories, tax rates and bank accounts."""
    for supplier in nomi.iter_suppliers(include_archived=True):
        session.add(
            Supplier(
                connection_id=connection_id,
                nomi_id=supplier.id,
                name=supplier.name,
                name_normalised=normalise_name(supplier.name),
                status=supplier.status,
                default_tax_rate_id=supplier.default_tax_rate_id,
                default_category_id=supplier.default_category_id,
            )
        )
    for customer in nomi.iter_customers(include_archived=True):
        session.add(
            Customer(
                connection_id=connection_id,
                nomi_id=customer.id,
                name=customer.name,
                name_normalised=normalise_name(customer.name),
                status=customer.status,
            )
        )
    for category in nomi.iter_categories(include_archived=True):
        session.add(
            Category(
                connection_id=connection_id,
                nomi_id=category.id,
                name=category.name,
                code=category.code,
                type=category.type,
                status=category.status,
            )
        )
    for rate in nomi.iter_tax_rates(include_archived=True):
        session.add(
            TaxRate(
                connection_id=connection_id,
                nomi_id=rate.id,
                name=rate.name,
                code=rate.code,
                rate=rate.rate,
                applies_to=rate.applies_to,
                status=rate.status,
            )
        )
    for bank in nomi.iter_bank_accounts(include_archived=True):
        session.add(
            BankAccount(
                connection_id=connection_id,
                nomi_id=bank.id,
                name=bank.name,
                status=bank.status,
                currency=bank.currency,
            )
        )
    session.commit()


@dataclass
class Org:
    """Seeded ids of one sandbox organisation, by code or name."""

    tenant_id: str

    def category(self, code: str) -> str:
        return stable_id(self.tenant_id, "category", code)

    def tax_rate(self, code: str) -> str:
        return stable_id(self.tenant_id, "tax_rate", code)

    def bank(self, name: str = "Business Current Account") -> str:
        return stable_id(self.tenant_id, "bank_account", name)

    def supplier(self, name: str) -> str:
        return stable_id(self.tenant_id, "supplier", name)


def set_settings(session: Session, connection_id: uuid.UUID, **values: Any) -> None:
    """Change connection settings (test set-up, not audited)."""
    row = session.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection_id)
    ).one()
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.commit()


def write_image(folder: Path, content: bytes = PDF) -> Path:
    """A document image file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(content)
    return path


def bank_method(session: Session, business_id: uuid.UUID, org: Org) -> uuid.UUID:
    """A payment method linked to the organisation's current account."""
    method = PaymentMethod(
        business_id=business_id,
        name=f"Current account {uuid.uuid4().hex[:6]}",
        bank_account_nomi_id=org.bank(),
    )
    session.add(method)
    session.flush()
    return method.id


def add_item(session: Session, business_id: uuid.UUID, org: Org, kind: str, **values: Any) -> Item:
    """An item of ``kind`` with a category and a consistent 20% tax (not yet assessed)."""
    from connector.store.models import Business

    business = session.get(Business, business_id)
    assert business is not None
    defaults: dict[str, Any] = {
        "kind": kind,
        "status": "review",  # the factory's date: a day of its own (no possible duplicates)
        "total": Decimal("120.00"),
        "tax_amount": Decimal("20.00"),
        "tax_rate_edit": org.tax_rate("STD20"),
    }
    if kind == ItemKind.SALES:
        defaults |= {"contact_name": "NHS England", "category_edit": org.category("200")}
        defaults["reference"] = f"SI-{uuid.uuid4().hex[:10]}"
    else:
        defaults |= {"contact_name": "Staples UK", "category_edit": org.category("453")}
    if kind == ItemKind.EXPENSE_CLAIM:
        defaults |= {"claimant_email": "owen@brightsmile.example"}
    return make_item(session, business=business, **(defaults | values))


def make_ready(session: Session, business_id: uuid.UUID) -> None:
    """Assess every item of the business (review/ready) and commit."""
    reassess(session, business_id=business_id)
    session.commit()


def records(sandbox: Any, tenant_id: str, kind: str) -> list[dict[str, Any]]:
    """Every record of ``kind`` the sandbox created through the API for the tenant."""
    response = sandbox.admin.get("/records", params={"tenant_id": tenant_id, "kind": kind})
    response.raise_for_status()
    body = response.json()
    return body if isinstance(body, list) else body.get("items", body.get("records", []))


def duplicates(sandbox: Any) -> dict[str, Any]:
    """The sandbox's duplicate report (empty dicts when every source_id has one record)."""
    response: httpx.Response = sandbox.admin.get("/duplicates")
    response.raise_for_status()
    return dict(response.json())


def engine_items(engine: Engine, business_id: uuid.UUID) -> list[Item]:
    """Every item of the business, fresh from the database."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(Item).where(Item.business_id == business_id)))


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
        self,
        *,
        batch_size: int = 50,
        workers: int = 3,
        nomi: NomiClient | None = None,
        on_all_started: Callable[[], None] | None = None,
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
        return publish_batch(
            self.engine,
            client,
            items,
            run_id,
            ctx,
            book=book,
            workers=workers,
            on_all_started=on_all_started,
        )

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
