"""Items that become Ready are published in seconds by the served on-ready deployment, no sweep.

The session's Prefect test server runs its triggers and actions services; ``deployments.serve``
serves auto-publish-to-nomi (without schedules: no sweep runs). Items are imported through the
import-items flow in many small files, so many ``nomi.items.ready`` events arrive in a burst; the
trigger must start a handful of runs, and Nomi must hold every Ready item exactly once.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from connector.rules.vocabulary import ItemStatus
from connector.store.models import Item
from flows.ops.import_items import ImportItemsParams, import_items
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tasks.runtime import DEFAULT_APP_BLOCK
from tests.connector.publishing.test_publishing_world import Org
from tests.deployments.conftest import REPO_ROOT, wait_for
from tests.flows.conftest import ConnectedBusiness

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

ON_READY = "auto-publish-to-nomi/on-ready"
#: Small import files run one after another: each import-items run emits one event.
IMPORTS = 12
#: The served run's start, its settle past the trigger's window, and the publishing itself,
#: on a shared machine.
PUBLISHED_WITHIN = 150.0


def items_file(rows: list[dict[str, str]], prefix: str, org: Org, day: int) -> str:
    """The cost rows of examples/items.csv with fresh ids and a category, no images.

    Each file's rows get a day and references of their own: rows alike in supplier and date
    and total (or supplier and reference) would be held as possible duplicates.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        fresh = {
            "external_id": f"{prefix}-{row['external_id']}",
            "reference": f"{prefix}-{row['reference']}",
            "date": f"2026-04-{day:02d}",
            "due_date": "",
            "category": org.category("429"),
        }
        writer.writerow(row | fresh | {"image": ""})
    return out.getvalue()


def example_rows() -> list[dict[str, str]]:
    text = (REPO_ROOT / "examples/items.csv").read_text(encoding="utf-8")
    return [r for r in csv.DictReader(io.StringIO(text)) if r["kind"] == "cost"]


def save_default_app(sandbox: SandboxHandle) -> None:
    """The ``nomi`` NomiApp block the trigger's runs load (their parameters name no block)."""
    from blocks.app import NomiApp

    NomiApp(
        client_id="nomi-connector-sandbox",
        client_secret="sandbox-client-secret",
        authorize_url=sandbox.authorize_url,
        token_url=sandbox.token_url,
        revoke_url=sandbox.revoke_url,
        api_base_url=sandbox.base_url,
        redirect_uri="http://127.0.0.1:8799/oauth/callback",
    ).save(DEFAULT_APP_BLOCK, overwrite=True)


async def _on_ready_runs() -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(ON_READY)
        return list(
            await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
        )


def served_with_trigger() -> bool:
    """The served on-ready deployment exists and its automation is created."""
    from prefect.client.orchestration import get_client

    async def check() -> bool:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(ON_READY)
            related = await client.read_resource_related_automations(
                f"prefect.deployment.{deployment.id}"
            )
            return str(deployment.entrypoint).startswith("flows.") and bool(related)

    try:
        return asyncio.run(check())
    except Exception:
        return False


def statuses(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> dict[str, int]:
    with db_session_for() as s:
        found = s.exec(select(Item.status).where(Item.business_id == business_id)).all()
    counts: dict[str, int] = {}
    for status in found:
        counts[status] = counts.get(status, 0) + 1
    return counts


def reasons(db_session_for: Callable[[], Session]) -> set[str]:
    with db_session_for() as s:
        return {r for item in s.exec(select(Item)) for r in item.review_reasons}


def test_imported_items_reach_nomi_in_seconds_with_few_runs_and_exactly_once(
    serve_process: Callable[..., Any],
    subprocess_env: dict[str, str],
    sandbox: SandboxHandle,
    connector_db: str,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    db_session_for: Callable[[], Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("NOMI_CONNECTOR_HOME", str(home))
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    sandbox.admin.patch("/settings", json={"per_minute": 0}).raise_for_status()
    save_default_app(sandbox)
    business = connect_business(BRIGHT_SMILE, warn_new_supplier=False, auto_publish=True)
    synced = sync_nomi_reference_data(
        SyncParams(business=business.slug, mode="full", app_block=nomi_app)
    )
    assert synced["businesses"][0]["status"] != "failed", synced
    serve_process(
        "--only",
        "auto-publish-to-nomi",
        "--no-schedules",
        env={**subprocess_env, "NOMI_CONNECTOR_DATABASE_URL": connector_db},
    )
    wait_for(served_with_trigger, timeout=90, what="the served on-ready deployment")
    inbox = home / "inbox" / business.slug
    inbox.mkdir(parents=True)
    rows = example_rows()
    org = Org(business.tenant_id)

    started = time.monotonic()
    for n in range(IMPORTS):
        (inbox / f"part-{n}.csv").write_text(
            items_file(rows, f"p{n}", org, day=n + 1), encoding="utf-8"
        )
        import_items(
            ImportItemsParams(
                business=business.slug, acting_user=business.admin_email, file=f"part-{n}.csv"
            )
        )
    burst = time.monotonic() - started
    imported = statuses(db_session_for, business.business_id)
    # Runs the first events started may be publishing some already: those count as Ready too.
    ready = sum(
        imported.get(status, 0)
        for status in (ItemStatus.READY, ItemStatus.PUBLISHING, ItemStatus.PUBLISHED)
    )
    assert ready >= IMPORTS, (imported, reasons(db_session_for))  # several Ready per file

    def all_published() -> bool:
        now = statuses(db_session_for, business.business_id)
        return now.get(ItemStatus.PUBLISHED, 0) >= ready and not now.get(ItemStatus.PUBLISHING)

    wait_for(all_published, timeout=PUBLISHED_WITHIN, what="every Ready item published")
    final = statuses(db_session_for, business.business_id)
    assert final.get(ItemStatus.PUBLISHED, 0) == ready, final

    runs = asyncio.run(_on_ready_runs())
    # One run per business per 5 s window at most (the trigger's `within`), whatever the events.
    # Runs arriving while a run is still settling add one more each window on a loaded machine.
    assert 1 <= len(runs) <= 3 + burst / 5, (len(runs), burst)
    assert len(runs) < IMPORTS, len(runs)
    assert sandbox.admin.get("/duplicates").json() == {"expenses": {}, "sales_invoices": {}}
    records = sandbox.admin.get(
        "/records", params={"tenant_id": business.tenant_id, "kind": "expense"}
    ).json()
    sources = [str(r.get("source_id")) for r in records]
    assert len(sources) == len(set(sources)) == ready
