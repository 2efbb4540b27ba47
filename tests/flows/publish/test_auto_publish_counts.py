"""auto-publish-to-nomi's counts after retries, and names in many scripts, against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import PublishAttempt, PublishRun
from flows.auto_publish_to_nomi import auto_publish_to_nomi
from sandbox.seed import BRIGHT_SMILE, HARBOUR
from sandbox.testing import SandboxHandle
from tasks.publish import SPARE_THREADS
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    duplicates,
    engine_items,
    make_ready,
    records,
)
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import params, prepare

# The flows read this test's database, with no per-minute limit and fresh client throttles.
pytestmark = pytest.mark.usefixtures("fast_world")


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
        # Every item the batch has at once (the tenant's five plus the spare threads), each
        # retried five times by the client.
        count=5 * (5 + SPARE_THREADS),
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
