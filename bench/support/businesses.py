"""Benchmark businesses: connected to sandbox organisations, their lists mirrored, items Ready.

Built on `bench.support.harness` (imported first: Prefect gets its own home before any import).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.support.harness import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Sandbox
from connector.items.assess import reassess
from connector.rules.vocabulary import ConnectionStatus, ItemKind, ItemStatus, Role
from connector.store.db import make_engine
from connector.store.db import session as db_session
from connector.store.models import Business, Connection, ConnectionSettings, Item, Membership, User
from connector.sync.catalog import LISTS
from connector.sync.lists import sync_list
from nomi.client import NomiClient, StaticTokenProvider
from sandbox.seed import stable_id

SUPPLIER, CUSTOMER = "Staples UK", "NHS England"  # seeded in organisations made like Bright Smile


@dataclass
class BenchBusiness:
    """A business connected to a sandbox organisation."""

    slug: str
    business_id: uuid.UUID
    connection_id: uuid.UUID
    tenant_id: str
    credentials_block: str | None
    access_token: str


def save_app_block(sandbox: Sandbox) -> str:
    """Save a `NomiApp` block pointing at the sandbox; returns its name."""
    from blocks.app import NomiApp

    name = f"nomi-bench-{uuid.uuid4().hex[:8]}"
    NomiApp(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=f"{sandbox.base_url}/oauth/authorize",
        token_url=f"{sandbox.base_url}/oauth/token",
        revoke_url=f"{sandbox.base_url}/oauth/revoke",
        api_base_url=sandbox.base_url,
        redirect_uri=REDIRECT_URI,
    ).save(name)
    return name


def connect_businesses(
    sandbox: Sandbox,
    database_url: str,
    tenant_ids: list[str],
    *,
    save_blocks: bool = True,
    auto_publish: bool = True,
) -> list[BenchBusiness]:
    """One consent per organisation, a credentials block each, and a connected business row.

    Args:
        sandbox: The running sandbox.
        database_url: The connector database.
        tenant_ids: Organisations to connect (one business each).
        save_blocks: Save a `NomiCredentials` block per business (needs a Prefect server).
        auto_publish: The businesses' auto-publish setting.

    Returns:
        The connected businesses, in the order of ``tenant_ids``.
    """
    from nomi.models import Organisation

    engine = make_engine(database_url)
    found: list[BenchBusiness] = []
    run = uuid.uuid4().hex[:6]
    for n, tenant_id in enumerate(tenant_ids):
        tokens = sandbox.consent(tenant_id)
        slug = f"bench-{run}-{n:03d}"
        block = f"nomi-credentials-{slug}" if save_blocks else None
        if block is not None:
            from blocks.credentials import NomiCredentials

            NomiCredentials.from_tokens(
                tokens,
                Organisation(tenant_id=tenant_id, tenant_name=slug),
                consent_expires_at=datetime.now(UTC) + timedelta(days=365),
            ).save(block)
            from blocks.locks import ensure_lock, publish_lock_name

            ensure_lock(publish_lock_name(slug))  # as connect-to-nomi's save-credentials does
        with db_session(engine) as session:
            business = Business(slug=slug, name=f"Bench business {n}")
            admin = User(email=f"admin-{slug}@bench.example", name=f"Admin {n}")
            session.add_all([business, admin])
            session.flush()
            session.add(Membership(user_id=admin.id, business_id=business.id, role=Role.ADMIN))
            connection = Connection(
                business_id=business.id,
                nomi_tenant_id=tenant_id,
                organisation_name=slug,
                status=ConnectionStatus.CONNECTED,
                scopes=list(tokens.scopes),
                credentials_block_name=block,
                connected_at=datetime.now(UTC),
                consent_expires_at=datetime.now(UTC) + timedelta(days=365),
            )
            session.add(connection)
            session.flush()
            session.add(
                ConnectionSettings(
                    connection_id=connection.id, auto_publish=auto_publish, warn_new_supplier=False
                )
            )
            session.commit()
            found.append(
                BenchBusiness(
                    slug=slug,
                    business_id=business.id,
                    connection_id=connection.id,
                    tenant_id=tenant_id,
                    credentials_block=block,
                    access_token=tokens.access_token.get_secret_value(),
                )
            )
    engine.dispose()
    return found


def mirror_lists(sandbox: Sandbox, database_url: str, business: BenchBusiness) -> None:
    """Mirror the five lists with the real sync (no throttle, so no tenant budget is spent)."""
    engine = make_engine(database_url)
    tokens = StaticTokenProvider(business.access_token)
    with NomiClient(sandbox.base_url, business.tenant_id, tokens) as nomi:
        for list_name in LISTS:
            sync_list(
                engine, nomi, connection_id=business.connection_id, list_name=list_name, mode="full"
            )
    engine.dispose()


def bench_item(business: BenchBusiness, n: int, *, name: str, net_step: Decimal) -> Item:
    """Item ``n`` of a benchmark, to be assessed: cost items even, sales items odd, no image.

    Its net is 100 + ``net_step`` x ``n`` at exactly 20% tax, a total of its own: items alike in
    supplier, date and total would be held as possible duplicates (docs/rules.md).
    """
    kind = ItemKind.COST if n % 2 == 0 else ItemKind.SALES
    category = "453" if kind == ItemKind.COST else "200"
    net = Decimal(100) + net_step * n
    return Item(
        business_id=business.business_id,
        kind=kind,
        status=ItemStatus.REVIEW,
        review_reasons=["not yet assessed"],
        external_id=f"{name}-{n}",
        contact_name=SUPPLIER if kind == ItemKind.COST else CUSTOMER,
        reference=f"{name[0].upper()}{n:05d}-{uuid.uuid4().hex[:8]}",
        date=date(2026, 3, 2),
        currency="GBP",
        total=net * Decimal("1.2"),
        tax_amount=net * Decimal("0.2"),
        category_edit=stable_id(business.tenant_id, "category", category),
        tax_rate_edit=stable_id(business.tenant_id, "tax_rate", "STD20"),
    )


def add_ready_items(database_url: str, business: BenchBusiness, count: int) -> None:
    """Add ``count`` items (half cost items, half sales items, no image) and assess them Ready."""
    engine = make_engine(database_url)
    with db_session(engine) as session:
        rows = [bench_item(business, n, name="bench", net_step=Decimal(1)) for n in range(count)]
        session.add_all(rows)
        session.commit()
        reassess(session, business_id=business.business_id)
        session.commit()
        ready = session.query(Item).filter(
            Item.business_id == business.business_id,  # type: ignore[arg-type]
            Item.status == ItemStatus.READY,  # type: ignore[arg-type]
        )
        if ready.count() != count:
            raise RuntimeError(f"{business.slug}: only {ready.count()} of {count} items are ready")
    engine.dispose()
