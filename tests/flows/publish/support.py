"""What the publish flow tests share: a prepared business, a new consent, fast parameters."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlmodel import Session

from blocks.app import NomiApp
from connector.rules.vocabulary import ItemKind
from connector.store.db import make_engine
from connector.store.models import Connection
from flows.auto_publish_to_nomi import AutoPublishParams
from sandbox.seed import BRIGHT_SMILE, HARBOUR
from tasks.runtime import NomiLimits, nomi_client
from tests.connector.publishing.test_publishing_world import (
    Org,
    add_item,
    bank_method,
    make_ready,
    mirror_lists,
    write_image,
)
from tests.flows.conftest import ConnectedBusiness

FAST_LIMITS = NomiLimits(per_minute=0, concurrent=5)
CONTACTS = {
    BRIGHT_SMILE: ("Staples UK", "NHS England", "owen@brightsmile.example"),
    HARBOUR: ("Screwfix", "Harbour Deli Ltd", "sam@harbourcoffee.example"),
}


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


def artifact_markdown(key: str) -> str:
    """The newest version of a markdown artifact, read back from the Prefect server by key."""
    from prefect.artifacts import Artifact

    artifact: Any = Artifact.get(key)
    assert artifact is not None, f"no artifact {key}"
    return str(artifact.data)


def task_run_counts(state: Any) -> dict[str, int]:
    """Task runs of the flow run that ended in ``state``: task run name -> run count (tries)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name: run.run_count for run in runs}
