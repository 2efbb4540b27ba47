"""Tasks of the reference-data sync: find the connections, sync one list, finish one business.

One task run per (business, list), one per business for its organisation (base currency, lock
date) and one per business to finish; per-record detail stays in the database (``SyncRun`` rows)
and in the business's table artifact ``sync-<slug>``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from blocks.app import NomiApp
from connector.connections.consent import mark_connection_expired
from connector.connections.targets import SyncTarget, after_sync, sync_targets
from connector.history.keys import artifact_key
from connector.store.models import Connection
from connector.sync.lists import SyncStatus, sync_list
from connector.sync.organisation import ORGANISATION, sync_organisation
from nomi.errors import ConnectionLostError, TransientError
from tasks.events import (
    EVENT_CONNECTION_EXPIRED,
    EVENT_SYNC_FINISHED,
    emit_connection_event,
    emit_items_ready,
)
from tasks.overview import write_overview
from tasks.runtime import db, engine_for, nomi_client, retry_on

#: Retry a task only when Nomi was temporarily unavailable (never a refusal).
retry_transient = retry_on(TransientError)


@task(
    name="find-connections",
    cache_policy=NO_CACHE,
    retries=0,
    task_run_name="find-connections-{business}",
)
def find_connections(
    database_url: str, business: str | None, statuses: list[str]
) -> list[SyncTarget]:
    """The connections to act on (one business, or every business when None)."""
    with db(database_url) as session:
        targets = sync_targets(session, business, statuses)
    get_run_logger().info("%d connection(s) to act on", len(targets))
    return targets


@task(
    name="sync-list",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    task_run_name="sync-{slug}-{list_name}",
)
def sync_one_list(
    database_url: str,
    app: NomiApp,
    target: SyncTarget,
    slug: str,
    list_name: str,
    mode: str,
    lookback_seconds: int,
) -> dict[str, Any]:
    """Sync one list of one business; a lost connection is returned, not raised.

    Returns:
        The `connector.sync.lists.SyncReport` as a dict (``status`` ``connection_lost`` when Nomi
        refused the connection: the connection is then marked expired).
    """
    logger = get_run_logger()
    connection = _connection(database_url, target, slug)
    try:
        with nomi_client(app, connection) as client:
            report = sync_list(
                engine_for(database_url),
                client,
                connection_id=target.connection_id,
                list_name=list_name,
                mode=mode,  # type: ignore[arg-type]
                lookback=timedelta(seconds=lookback_seconds),
            )
    except ConnectionLostError as exc:
        return _connection_lost(database_url, target, slug, list_name, mode, exc)
    logger.info(
        "%s %s (%s): fetched %d, inserted %d, updated %d, archived %d, status %s",
        slug,
        list_name,
        mode,
        report.fetched,
        report.inserted,
        report.updated,
        report.archived,
        report.status.value,
    )
    return report.as_dict()


@task(
    name="sync-organisation",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    task_run_name="sync-{slug}-organisation",
)
def sync_one_organisation(
    database_url: str, app: NomiApp, target: SyncTarget, slug: str, mode: str
) -> dict[str, Any]:
    """Mirror a business's Nomi organisation (base currency, lock date); say what changed.

    Returns:
        The `connector.sync.organisation.OrganisationReport` as a dict: ``organisation_changed``
        and ``changes`` tell whether the lock date or base currency moved since the last sync
        (``status`` ``connection_lost`` when Nomi refused the connection, as for a list).
    """
    logger = get_run_logger()
    connection = _connection(database_url, target, slug)
    try:
        with nomi_client(app, connection) as client:
            report = sync_organisation(
                engine_for(database_url),
                client,
                connection_id=target.connection_id,
                mode=mode,  # type: ignore[arg-type]
            )
    except ConnectionLostError as exc:
        return _connection_lost(database_url, target, slug, ORGANISATION, mode, exc)
    if report.organisation_changed:
        logger.warning("%s: the Nomi organisation changed: %s", slug, report.detail)
    logger.info(
        "%s organisation: base currency %s, lock date %s",
        slug,
        report.base_currency,
        report.lock_date or "none",
    )
    return report.as_dict()


def _connection(database_url: str, target: SyncTarget, slug: str) -> Connection:
    """The target's connection row (read once per task)."""
    with db(database_url) as session:
        connection = session.get(Connection, target.connection_id)
    if connection is None:
        raise LookupError(f"connection of {slug} disappeared")
    return connection


def _connection_lost(
    database_url: str,
    target: SyncTarget,
    slug: str,
    list_name: str,
    mode: str,
    exc: ConnectionLostError,
) -> dict[str, Any]:
    """Mark the connection expired and return the ``connection_lost`` report of ``list_name``."""
    reason = f"Nomi refused the connection while syncing {list_name}: {exc}"
    with db(database_url, write=True) as session:
        mark_connection_expired(session, target.business_id, reason)
    get_run_logger().warning("%s: connection lost, marked expired (%s)", slug, exc)
    return {
        "list": list_name,
        "mode": mode,
        "status": SyncStatus.CONNECTION_LOST.value,
        "error": reason,
    }


@task(name="finish-sync", cache_policy=NO_CACHE, task_run_name="finish-sync-{slug}")
def finish_business_sync(
    database_url: str,
    target: SyncTarget,
    slug: str,
    reports: list[dict[str, Any]],
    failures: list[str],
) -> dict[str, Any]:
    """Reassess a synced business, publish its artifacts (sync, overview) and tell ops (events).

    Returns:
        The business's summary: status, per-list counts, rule and review changes, and
        ``organisation_changed`` / ``organisation_changes`` (the lock date or base currency moved
        since the last sync: items are reassessed here, and later work may reassess held ones).
    """
    logger = get_run_logger()
    lost = any(r.get("status") == SyncStatus.CONNECTION_LOST.value for r in reports)
    changes = organisation_changes(reports)
    summary: dict[str, Any] = {
        "business": slug,
        "lists": reports,
        "failures": failures,
        "organisation_changed": bool(changes),
        "organisation_changes": changes,
    }
    if lost:
        summary["status"] = "connection_lost"
        reason = next(r.get("error") for r in reports if r.get("status") == "connection_lost")
        emit_connection_event(EVENT_CONNECTION_EXPIRED, slug, {"reason": reason, "flow": "sync"})
    else:
        all_ok = not failures and all(r.get("status") == SyncStatus.OK.value for r in reports)
        with db(database_url, write=True) as session:
            done = after_sync(session, target, all_lists_ok=all_ok)
        emit_items_ready(slug, len(done.review.became_ready), "sync")  # committed: publish them
        summary.update(
            status="ok" if all_ok else ("failed" if failures else "incomplete"),
            rules_upserted=done.rules.upserted,
            rules_removed=done.rules.removed,
            items_to_review=len(done.review.became_review),
            items_to_ready=len(done.review.became_ready),
        )
        emit_connection_event(
            EVENT_SYNC_FINISHED,
            slug,
            {k: v for k, v in summary.items() if k != "lists"}
            | {"counts": {r["list"]: _counts(r) for r in reports}},
        )
    rows = [
        {"list": r.get("list"), "status": r.get("status"), **_counts(r), "error": r.get("error")}
        for r in reports
    ] + [{"list": f, "status": "failed", "error": "task failed (see its logs)"} for f in failures]
    create_table_artifact(
        table=rows,
        key=artifact_key("sync", slug),
        description=f"Reference-data sync of **{slug}**: {summary['status']}",
    )
    write_overview(database_url, slug)
    logger.info("%s: sync %s", slug, summary["status"])
    return summary


def organisation_changes(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The organisation's changed settings among a business's sync reports (``[]``: none)."""
    for report in reports:
        if report.get("list") == ORGANISATION:
            return list(report.get("changes") or [])
    return []


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: int(report.get(k) or 0) for k in ("fetched", "inserted", "updated", "archived")}
