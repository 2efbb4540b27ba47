"""auto-publish-to-nomi against the sandbox over real HTTP, under the session Prefect server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import Session, col, select

from blocks.app import NomiApp
from blocks.tokens import forget_cached_credentials
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt, PublishRun
from connector.store.models import Connection
from flows.auto_publish_to_nomi import AutoPublishParams, PublishSummary, auto_publish_to_nomi
from sandbox.seed import BRIGHT_SMILE, HARBOUR
from sandbox.testing import SandboxHandle
from tasks.runtime import NomiLimits, nomi_client
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    bank_method,
    duplicates,
    engine_items,
    make_ready,
    mirror_lists,
    records,
    write_image,
)
from tests.flows.conftest import ConnectedBusiness

FAST_LIMITS = NomiLimits(per_minute=0, concurrent=5)
CONTACTS = {
    BRIGHT_SMILE: ("Staples UK", "NHS England", "owen@brightsmile.example"),
    HARBOUR: ("Screwfix", "Harbour Deli Ltd", "sam@harbourcoffee.example"),
}


# The flows read this test's database, with no per-minute limit and fresh client throttles.
pytestmark = pytest.mark.usefixtures("fast_world")


def prepare(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    organisation: str,
    tmp_path: Path,
    *,
    costs: int,
    sales: int,
    claims: int,
    **settings: Any,
) -> tuple[ConnectedBusiness, dict[str, list[uuid.UUID]]]:
    """Connect a business, mirror its lists, add items of every kind and assess them."""
    business = connect_business(organisation, warn_new_supplier=False, **settings)
    org = Org(business.tenant_id)
    supplier, customer, claimant = CONTACTS[organisation]
    engine = make_engine(connector_db)
    ids: dict[str, list[uuid.UUID]] = {"cost": [], "sales": [], "expense_claim": []}
    with Session(engine, expire_on_commit=False) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        with nomi_client(
            cast(NomiApp, NomiApp.load(nomi_app)), connection, limits=FAST_LIMITS
        ) as nomi:
            mirror_lists(s, nomi, connection.id)
        method = bank_method(s, business.business_id, org)
        for n in range(costs):
            image = write_image(tmp_path / "images") if n % 2 == 0 else None
            extra = {"image_path": str(image), "image_content_type": "application/pdf"}
            item = add_item(
                s,
                business.business_id,
                org,
                ItemKind.COST,
                contact_name=supplier,
                **(extra if image else {}),
            )
            ids["cost"].append(item.id)
        for n in range(sales):
            paid = {"paid": True, "payment_method_id": method} if n % 2 == 0 else {}
            item = add_item(
                s, business.business_id, org, ItemKind.SALES, contact_name=customer, **paid
            )
            ids["sales"].append(item.id)
        for _ in range(claims):
            item = add_item(
                s,
                business.business_id,
                org,
                ItemKind.EXPENSE_CLAIM,
                contact_name=supplier,
                claimant_email=claimant,
            )
            ids["expense_claim"].append(item.id)
        s.commit()
        make_ready(s, business.business_id)
    engine.dispose()
    return business, ids


def reconsent(nomi_app: str, business: ConnectedBusiness) -> None:
    """Give consent again and save the new tokens (what reconnect-to-nomi does)."""
    import httpx

    from blocks.credentials import NomiCredentials
    from blocks.tokens import _shared_for
    from nomi.models import Organisation
    from sandbox.browser import complete_consent
    from tests.flows.conftest import ACCOUNTANT_EMAIL, ACCOUNTANT_PASSWORD

    app = cast(NomiApp, NomiApp.load(nomi_app))
    with app.oauth() as oauth, httpx.Client(timeout=30) as browser:
        verifier, _ = oauth.new_pkce()
        state = oauth.new_state()
        answer = complete_consent(
            browser,
            oauth.authorization_url(state, verifier),
            email=ACCOUNTANT_EMAIL,
            password=ACCOUNTANT_PASSWORD,
            tenant_id=business.tenant_id,
        )
        tokens = oauth.exchange_code(answer["code"], verifier)
    organisation = Organisation(tenant_id=business.tenant_id, tenant_name=HARBOUR)
    NomiCredentials.from_tokens(tokens, organisation).save(
        business.credentials_block, overwrite=True
    )
    _shared_for(business.credentials_block).credentials = None


def params(**values: Any) -> AutoPublishParams:
    base: dict[str, Any] = {
        "batch_size": 5,
        "batch_retry_delay_seconds": 0.2,
        "limits": FAST_LIMITS,
    }
    return AutoPublishParams(**(base | values))


def test_auto_publish_publishes_every_ready_item_once_across_two_businesses_under_faults(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    worlds = [
        prepare(
            connect_business,
            nomi_app,
            connector_db,
            org,
            tmp_path,
            costs=8,
            sales=4,
            claims=2,
            auto_publish=True,
        )
        for org in (BRIGHT_SMILE, HARBOUR)
    ]
    for business, _ in worlds:
        for name, extra in (
            ("server_error", {"params": {"status": 503}}),
            ("rate_limit_concurrent", {}),
            ("commit_then_drop", {}),
        ):
            sandbox.fault(
                name, tenant_id=business.tenant_id, method="POST", probability=0.08, **extra
            )

    summary = auto_publish_to_nomi(params(app_block=nomi_app))

    assert isinstance(summary, PublishSummary)
    assert summary.published == 24
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    engine = make_engine(connector_db)
    for business, ids in worlds:
        assert len(records(sandbox, business.tenant_id, "expense")) == 8
        assert len(records(sandbox, business.tenant_id, "sales_invoice")) == 4
        assert len(records(sandbox, business.tenant_id, "payment")) == 2
        assert len(records(sandbox, business.tenant_id, "attachment")) == 4
        by_id = {i.id: i for i in engine_items(engine, business.business_id)}
        for item_id in ids["cost"] + ids["sales"]:
            assert by_id[item_id].status == ItemStatus.PUBLISHED
        # Auto-publish covers cost and sales items only: expense claims wait to be published.
        for item_id in ids["expense_claim"]:
            assert by_id[item_id].status == ItemStatus.READY
        assert summary.businesses[business.slug].published == 12
        # 12 auto-published items in batches of 5: 5, 5, then 2, and no fourth batch (the third
        # took every Ready item it found, so another would find nothing).
        assert summary.businesses[business.slug].batches == 3
    with Session(engine) as s:
        runs = s.exec(select(PublishRun)).all()
    assert sorted(r.published for r in runs) == [12, 12]


def test_two_runs_started_together_publish_everything_once(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        HARBOUR,
        tmp_path,
        costs=10,
        sales=4,
        claims=0,
        auto_publish=True,
    )
    results: list[PublishSummary | BaseException] = []

    def run() -> None:
        try:
            results.append(auto_publish_to_nomi(params(app_block=nomi_app, lock_wait_seconds=0.5)))
        except BaseException as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert all(isinstance(r, PublishSummary) for r in results), results
    published = sum(r.published for r in results if isinstance(r, PublishSummary))
    assert published == 14
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    assert len(records(sandbox, business.tenant_id, "expense")) == 10
    assert len(records(sandbox, business.tenant_id, "sales_invoice")) == 4
    engine = make_engine(connector_db)
    statuses = {i.status for i in engine_items(engine, business.business_id)}
    assert statuses == {ItemStatus.PUBLISHED}


def test_connection_lost_stops_the_business_and_reconnect_publishes_what_waited(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, _ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        HARBOUR,
        tmp_path,
        costs=3,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    sandbox.fault("consent_expired", tenant_id=business.tenant_id, count=1)

    first = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))

    assert first.published == 0
    assert first.businesses[business.slug].stopped == "connection_lost"
    engine = make_engine(connector_db)
    items = engine_items(engine, business.business_id)
    assert {(i.status, i.last_error_code) for i in items} == {
        (ItemStatus.READY, "connection_expired")
    }
    reconsent(nomi_app, business)
    with Session(engine) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        assert connection.status == "expired"
        # What the reconnect flow does once consent is given again; auto-publish is now off.
        connection.status = "connected"
        s.add(connection)
        s.commit()
    from tests.connector.publishing.test_publishing_world import set_settings

    with Session(engine) as s:
        set_settings(s, business.connection_id, auto_publish=False)

    skipped = auto_publish_to_nomi(params(app_block=nomi_app, business=business.slug))
    assert skipped.published == 0
    again = auto_publish_to_nomi(
        params(app_block=nomi_app, business=business.slug, trigger="reconnect")
    )

    assert again.published == 3
    assert len(records(sandbox, business.tenant_id, "expense")) == 3


def test_a_business_gets_its_next_batch_without_waiting_for_a_slower_business(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """Batches are not rounds: a slow batch of one business holds up no other business."""
    slow, _ = prepare(
        connect_business, nomi_app, connector_db, BRIGHT_SMILE, tmp_path, costs=1, sales=0,
        claims=0, auto_publish=True,
    )  # fmt: skip
    fast, _ = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=6, sales=0,
        claims=0, auto_publish=True,
    )  # fmt: skip
    sandbox.fault(
        "latency",
        tenant_id=slow.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        count=1,
        params={"seconds": 3.0},
    )

    summary = auto_publish_to_nomi(params(app_block=nomi_app, batch_size=2))

    assert summary.businesses[fast.slug].batches == 3
    assert summary.businesses[fast.slug].published == 6
    assert summary.businesses[slow.slug].published == 1
    engine = make_engine(connector_db)
    with Session(engine) as s:
        attempts = s.exec(select(PublishAttempt)).all()
    engine.dispose()
    slow_created = min(a.at for a in attempts if a.business_id == slow.business_id)
    fast_done = max(a.at for a in attempts if a.business_id == fast.business_id)
    # All three batches of the fast business ended while the slow one's first write hung (in
    # rounds its second batch would have waited for the slow batch).
    assert fast_done < slow_created


def test_publishing_threads_open_no_prefect_client(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch task loads the credentials block in its own thread (with the run's client).

    A publishing thread has no Prefect client of its own: a block read there opens a new one
    (~65 ms of CPU each, mostly the CA bundle), once per business and batch.
    """
    from prefect.client.orchestration import SyncPrefectClient

    businesses = [
        prepare(
            connect_business, nomi_app, connector_db, org, tmp_path, costs=3, sales=0, claims=0,
            auto_publish=True,
        )[0]
        for org in (BRIGHT_SMILE, HARBOUR)
    ]  # fmt: skip
    for business in businesses:  # as in a fresh worker process
        forget_cached_credentials(business.credentials_block)
    opened: list[str] = []
    real_init = SyncPrefectClient.__init__

    def spy(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> None:
        opened.append(threading.current_thread().name)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", spy)

    summary = auto_publish_to_nomi(params(app_block=nomi_app))

    assert summary.published == 6
    assert not [name for name in opened if name.startswith("nomi-publish")], opened


def summary_head(slug: str) -> str:
    """The totals row of the business's latest publish-summary artifact."""
    import json

    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    from connector.history.keys import artifact_key

    artifact = Artifact.get(artifact_key("publish-summary", slug), _sync=True)  # type: ignore[call-arg]
    assert isinstance(artifact, ArtifactResponse)
    data = artifact.data
    rows = json.loads(data) if isinstance(data, str) else data
    assert isinstance(rows, list)
    head = rows[0]
    assert head["item"] == "(totals)"
    return str(head["outcome"])


def test_a_batch_retried_after_a_partial_success_counts_every_item_it_published(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """Issue 15: a batch that published 24 items then stopped on a transient failure was retried
    by Prefect and only the retry was counted (54 published items showed as 30)."""
    business, _ = prepare(
        connect_business,
        nomi_app,
        connector_db,
        BRIGHT_SMILE,
        tmp_path / "a",
        costs=0,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    engine = make_engine(connector_db)
    org = Org(business.tenant_id)
    with Session(engine, expire_on_commit=False) as s:
        wanted = [
            add_item(s, business.business_id, org, ItemKind.COST, contact_name="Staples UK").id
            for _ in range(30)
        ]
        s.commit()
        make_ready(s, business.business_id)
    # After 12 expenses, 503s outlast the client's own retries: the first try of batch 1 stops
    # on a transient failure part way, and Prefect retries the batch.
    sandbox.fault(
        "server_error",
        tenant_id=business.tenant_id,
        method="POST",
        path="/api/v1/expenses",
        after=12,
        count=25,  # five items at once, each retried five times by the client
        params={"status": 503},
    )

    summary = auto_publish_to_nomi(params(app_block=nomi_app, batch_size=25, batch_retries=2))

    by_id = {i.id: i for i in engine_items(engine, business.business_id)}
    assert all(by_id[i].status == ItemStatus.PUBLISHED for i in wanted)
    created = records(sandbox, business.tenant_id, "expense")
    assert len(created) == 30
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    with Session(engine) as s:
        attempts = s.exec(
            select(PublishAttempt).where(col(PublishAttempt.outcome).in_(["transient", "unknown"]))
        ).all()
        (run,) = s.exec(select(PublishRun)).all()
    assert attempts, "the fault did not stop a batch: the test would pass vacuously"
    assert summary.businesses[business.slug].published == 30
    assert summary.businesses[business.slug].claimed >= 30
    assert run.published == 30
    assert run.claimed >= 30
    assert summary_head(business.slug).startswith("published 30,")
    engine.dispose()


SUPPLIERS_BY_SCRIPT = [
    "東京デンタル",
    "東京文具",
    "مطعم الشرق",
    'שוקולד טוב בע"מ',
    "Αθηναϊκή Οδοντιατρική",
    "Стоматология Улыбка",
    "दिल्ली डेंटल",
    "ร้านกาแฟดอยช้าง",
    "北京牙科诊所",
]
CUSTOMERS_BY_SCRIPT = ["مكتبة النور", "上海文具有限公司", "Кафе Ромашка", "Café Noir"]


def test_names_in_many_scripts_zero_rated_customers_and_faults_publish_to_their_own_contacts(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    """Issue 15 end to end: every non-Latin supplier shared one contact, and a zero-rated sale
    carried the extracted penny of tax."""
    from decimal import Decimal

    from connector.rules.names import normalise_name

    engine = make_engine(connector_db)
    expected: dict[str, tuple[str, str]] = {}  # item id -> (contact kind, name on the item)
    tenants = []
    for offset, organisation in enumerate((BRIGHT_SMILE, HARBOUR)):
        business, _ = prepare(
            connect_business,
            nomi_app,
            connector_db,
            organisation,
            tmp_path / organisation,
            costs=0,
            sales=0,
            claims=0,
            auto_publish=True,
        )
        tenants.append(business.tenant_id)
        org = Org(business.tenant_id)
        with Session(engine, expire_on_commit=False) as s:
            for name in SUPPLIERS_BY_SCRIPT * 2:  # two items per new supplier
                item = add_item(s, business.business_id, org, ItemKind.COST, contact_name=name)
                expected[str(item.id)] = ("supplier", name)
            for name in CUSTOMERS_BY_SCRIPT[offset:]:
                item = add_item(
                    s,
                    business.business_id,
                    org,
                    ItemKind.SALES,
                    contact_name=name,
                    total=Decimal("0.11"),
                    tax_amount=Decimal("0.01"),
                    tax_rate_edit=org.tax_rate("EXEMPT"),
                )
                expected[str(item.id)] = ("customer", name)
            s.commit()
            make_ready(s, business.business_id)
        for fault, extra in (
            ("server_error", {"params": {"status": 503}}),
            ("commit_then_drop", {}),
        ):
            sandbox.fault(
                fault, tenant_id=business.tenant_id, method="POST", probability=0.1, **extra
            )

    summary = auto_publish_to_nomi(params(app_block=nomi_app, batch_retries=3))

    assert summary.published == len(expected)
    assert duplicates(sandbox) == {"expenses": {}, "sales_invoices": {}}
    seen: set[str] = set()
    for tenant in tenants:
        contacts = {
            c["id"]: c["name"]
            for kind in ("supplier", "customer")
            for c in records(sandbox, tenant, kind)
        }
        suppliers = records(sandbox, tenant, "supplier")
        # one contact per distinct name, however many items and retries
        assert len(suppliers) == len(SUPPLIERS_BY_SCRIPT)
        for expense in records(sandbox, tenant, "expense"):
            kind, name = expected[expense["source_id"]]
            assert kind == "supplier"
            assert normalise_name(contacts[expense["supplier_id"]]) == normalise_name(name)
            seen.add(expense["source_id"])
        for invoice in records(sandbox, tenant, "sales_invoice"):
            kind, name = expected[invoice["source_id"]]
            assert kind == "customer"
            assert normalise_name(contacts[invoice["customer_id"]]) == normalise_name(name)
            assert [line["tax_amount"] for line in invoice["lines"]] == ["0.00"]
            seen.add(invoice["source_id"])
    assert seen == set(expected)
    with Session(engine) as s:
        runs = s.exec(select(PublishRun)).all()
    assert sum(r.published for r in runs) == len(expected)
    engine.dispose()
