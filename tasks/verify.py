"""Tasks of the connection check: verify one connection, summarise every check in one artifact,
and tell ops of items held in review for more than a day (``nomi.items.held``).
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks.app import NomiApp
from blocks.tokens import BlockTokenProvider
from connector.connections.attention import HELD_TOO_LONG, held_in_review
from connector.connections.checks import CheckOutcome, check_connection, record_check
from connector.connections.disconnect import revoke_pending
from connector.connections.targets import SyncTarget
from connector.store.models import Connection
from tasks.events import (
    EVENT_CONNECTION_EXPIRED,
    EVENT_CONNECTION_EXPIRING,
    EVENT_CONNECTION_VERIFIED,
    EVENT_ITEMS_HELD,
    MAX_NAMED_ITEMS,
    emit_business_event,
    emit_connection_event,
)
from tasks.runtime import db, nomi_client
from tasks.sync import retry_transient

CHECKS_ARTIFACT_KEY = "connection-checks"
EVENTS = {
    CheckOutcome.VERIFIED: EVENT_CONNECTION_VERIFIED,
    CheckOutcome.EXPIRING: EVENT_CONNECTION_EXPIRING,
    CheckOutcome.EXPIRED: EVENT_CONNECTION_EXPIRED,
}


@task(
    name="verify-connection",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    task_run_name="verify-{slug}",
)
def verify_connection(
    database_url: str, app: NomiApp, target: SyncTarget, slug: str, expiry_warning_days: int
) -> dict[str, Any]:
    """Check one connection, store the check, update the connection and emit its event.

    Returns:
        The check as a dict: business, outcome, the four checks, days to consent expiry, detail.
    """
    logger = get_run_logger()
    with db(database_url) as session:
        connection = session.get(Connection, target.connection_id)
    if connection is None or not connection.credentials_block_name:
        raise LookupError(f"connection of {slug} has no credentials block")
    tokens = BlockTokenProvider(connection.credentials_block_name, app)
    credentials = tokens.credentials()
    consent_expires_at = connection.consent_expires_at or credentials.consent_expires_at
    with nomi_client(app, connection) as client:
        result = check_connection(
            client,
            tokens,
            granted_scopes=credentials.scopes or connection.scopes,
            consent_expires_at=consent_expires_at,
            expiry_warning_days=expiry_warning_days,
        )
    with db(database_url, write=True) as session:
        changed = record_check(session, target.connection_id, result)
    summary = {
        "business": slug,
        "outcome": result.outcome.value,
        "token_ok": result.token_ok,
        "tenant_ok": result.tenant_ok,
        "scopes_ok": result.scopes_ok,
        "list_ok": result.list_ok,
        "days_to_consent_expiry": result.days_to_consent_expiry,
        "consent_expires_on": consent_expires_at.date().isoformat() if consent_expires_at else None,
        "status_changed": changed,
        "detail": result.detail,
    }
    event = EVENTS.get(result.outcome)
    if event is not None:
        emit_connection_event(
            event, slug, {k: v for k, v in summary.items() if k != "business"} | {"flow": "verify"}
        )
    log = logger.info if result.ok else logger.warning
    log("%s: %s %s", slug, result.outcome.value, result.detail)
    return summary


@task(name="report-held-items", cache_policy=NO_CACHE, task_run_name="report-held-items")
def report_held_items(database_url: str, targets: list[SyncTarget]) -> dict[str, int]:
    """Emit ``nomi.items.held`` for each business with items in review for more than a day.

    Returns:
        Business slug -> how many of its items are held that long (businesses with some only).
    """
    slugs: dict[uuid.UUID, str] = {t.business_id: t.slug for t in targets}
    with db(database_url) as session:
        found = held_in_review(session, business_ids=list(slugs), named=MAX_NAMED_ITEMS)
    counts: dict[str, int] = {}
    for business_id, held in found.items():
        slug = slugs[business_id]
        counts[slug] = held.count
        payload = {
            "business": slug,
            "count": held.count,
            "held_longer_than_hours": int(HELD_TOO_LONG.total_seconds() // 3600),
            "oldest_since": held.oldest.isoformat(timespec="seconds") if held.oldest else None,
            "items": [{"external_id": i.external_id, "reason": i.reason} for i in held.items],
            "flow": "verify",
        }
        emit_business_event(EVENT_ITEMS_HELD, slug, payload)
    if counts:
        get_run_logger().warning("items held in review for more than a day: %s", counts)
    return counts


def describe_disconnected(database_url: str, target: SyncTarget) -> dict[str, Any]:
    """The check row of a connection disconnected on purpose (not checked at Nomi)."""
    with db(database_url) as session:
        connection = session.get(Connection, target.connection_id)
    pending = connection is not None and revoke_pending(connection)
    detail = "disconnected (disconnect-from-nomi): not checked"
    if pending:
        assert connection is not None
        detail = f"{detail}; {connection.last_error}"
    return {
        "business": target.slug,
        "outcome": "disconnected",
        "token_ok": None,
        "tenant_ok": None,
        "scopes_ok": None,
        "list_ok": None,
        "days_to_consent_expiry": None,
        "status_changed": False,
        "revoke_pending": pending,
        "detail": detail,
    }


@task(name="summarise-checks", cache_policy=NO_CACHE, task_run_name="summarise-checks")
def summarise_checks(checks: list[dict[str, Any]]) -> str:
    """Publish the markdown artifact ``connection-checks`` summarising every check of the run."""

    def mark(value: object) -> str:
        return {True: "yes", False: "NO", None: "-"}.get(value, str(value))  # type: ignore[call-overload]

    lines = [
        "# Nomi connection checks",
        "",
        "| business | outcome | token | organisation | scopes | list | consent days | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        days = c.get("days_to_consent_expiry")
        lines.append(
            f"| {c['business']} | **{c['outcome']}** | {mark(c.get('token_ok'))} | "
            f"{mark(c.get('tenant_ok'))} | {mark(c.get('scopes_ok'))} | {mark(c.get('list_ok'))} | "
            f"{'-' if days is None else days} | {(c.get('detail') or '').replace('|', '/')} |"
        )
    if not checks:
        lines.append("| (no connection to check) | | | | | | | |")
    markdown = "\n".join(lines)
    create_markdown_artifact(
        markdown=markdown, key=CHECKS_ARTIFACT_KEY, description="Nomi connection checks"
    )
    return markdown
