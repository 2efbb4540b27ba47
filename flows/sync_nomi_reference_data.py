"""The sync-nomi-reference-data flow: mirror Nomi's organisation and lists for a business or all."""

from __future__ import annotations

from typing import Any, Literal, cast

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.connections.targets import SyncTarget
from connector.rules.vocabulary import ConnectionStatus
from connector.settings import ConnectorSettings
from connector.sync.catalog import LISTS
from connector.sync.organisation import ORGANISATION
from tasks.runtime import DEFAULT_APP_BLOCK, run_param
from tasks.sync import (
    find_connections,
    finish_business_sync,
    sync_one_list,
    sync_one_organisation,
)

ListChoice = Literal["suppliers", "customers", "categories", "tax_rates", "bank_accounts"]


class SyncParams(BaseModel):
    """What to sync."""

    business: str = Field(
        default="", description="Business slug; leave empty to sync every connected business."
    )
    lists: list[ListChoice] = Field(
        default_factory=lambda: list(LISTS),  # type: ignore[arg-type]
        description="Which Nomi lists to sync (default: all five).",
    )
    mode: Literal["incremental", "full"] = Field(
        default="incremental",
        description="incremental: only what changed since the last sync; full: everything, and "
        "records deleted in Nomi are archived here.",
    )
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block (the app registration)."
    )
    lookback_seconds: int = Field(
        default=300,
        ge=0,
        description="An incremental sync starts this many seconds before the last bookmark.",
    )


#: The run of a form left as it is: every list of every business, incrementally.
DEFAULT_SYNC = SyncParams()


def _run_name() -> str:
    """``sync-{business or all}-{mode}``."""
    return f"sync-{run_param('business') or 'all'}-{run_param('mode') or 'incremental'}"


class SyncFailedError(RuntimeError):
    """At least one business could not be synced for a reason other than a lost connection."""


@flow(
    name="sync-nomi-reference-data",
    flow_run_name=_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
)
def sync_nomi_reference_data(params: SyncParams = DEFAULT_SYNC) -> dict[str, Any]:
    """Refresh Nomi's organisation, suppliers, customers, categories, tax rates and bank accounts.

    Runs for one business (`business`) or for every connected business. The organisation (base
    currency, lock date) comes first, whatever `lists` says; then each list is one task per
    business, run one after the other for that business; businesses run side by side. A changed
    lock date or base currency is logged and named in the summary (`organisation_changed`).
    Afterwards Nomi supplier tax rates become supplier rules (when the business uses them), items
    pointing at archived categories or tax rates go back to review, and each business gets a table
    artifact `sync-{business}`. A business whose Nomi connection was refused is marked `expired`
    (event `nomi.connection.expired`: reconnect it) and the others carry on; the run fails when
    any business failed for another reason. A business disconnected on purpose
    (disconnect-from-nomi) is skipped. Scheduled incremental every 30 minutes, full nightly.
    """
    logger = get_run_logger()
    settings = ConnectorSettings()
    app = cast(NomiApp, NomiApp.load(params.app_block))
    url = settings.database_url
    found: list[SyncTarget] = find_connections(
        url,
        params.business or None,
        [ConnectionStatus.CONNECTED.value, ConnectionStatus.DISCONNECTED.value],
    )
    # Disconnected on purpose (disconnect-from-nomi): skipped, not an error.
    skipped = {t.slug: "disconnected" for t in found if t.status == ConnectionStatus.DISCONNECTED}
    for slug in skipped:
        logger.info("skipping %s: disconnected from Nomi", slug)
    targets = [t for t in found if t.slug not in skipped]
    summaries = _sync_lists(url, app, targets, params)
    failed = [t.slug for t, s in zip(targets, summaries, strict=True) if s["status"] == "failed"]
    logger.info("synced %d business(es); failed: %s", len(targets), failed or "none")
    if failed:
        raise SyncFailedError(f"sync failed for {', '.join(failed)} (see the task logs)")
    return {"businesses": summaries, "skipped": skipped}


def _submit(url: str, app: NomiApp, target: SyncTarget, list_name: str, params: SyncParams) -> Any:
    """Start the task that syncs ``list_name`` (or the organisation) of one business."""
    if list_name == ORGANISATION:
        return sync_one_organisation.submit(url, app, target, target.slug, params.mode)
    return sync_one_list.submit(
        url, app, target, target.slug, list_name, params.mode, params.lookback_seconds
    )


def _sync_lists(
    url: str, app: NomiApp, targets: list[SyncTarget], params: SyncParams
) -> list[dict[str, Any]]:
    """The organisation and each list for every business side by side, then each business's
    finish; their summaries.

    A business whose connection was lost stops there (the others go on); a failed list task is
    recorded as failed for that business.
    """
    reports: dict[str, list[dict[str, Any]]] = {t.slug: [] for t in targets}
    failures: dict[str, list[str]] = {t.slug: [] for t in targets}
    active = {t.slug: t for t in targets}
    for list_name in [ORGANISATION, *params.lists]:
        futures = {
            slug: _submit(url, app, target, list_name, params) for slug, target in active.items()
        }
        for slug, future in futures.items():
            future.wait()
            if future.state.is_failed():
                failures[slug].append(list_name)
                continue
            report = future.result()
            reports[slug].append(report)
            if report["status"] == "connection_lost":
                active.pop(slug)  # stop this business; the others go on
    finishing = [
        finish_business_sync.submit(url, t, t.slug, reports[t.slug], failures[t.slug])
        for t in targets
    ]
    summaries = []
    for future in finishing:
        future.wait()
        if future.state.is_failed():
            summaries.append({"status": "failed", "error": "finish-sync failed"})
        else:
            summaries.append(future.result())
    return summaries
