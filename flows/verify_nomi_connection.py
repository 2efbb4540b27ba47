"""The verify-nomi-connection flow: check that businesses' Nomi connections still work."""

from __future__ import annotations

from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.connections.targets import SyncTarget
from connector.rules.vocabulary import ConnectionStatus
from connector.settings import ConnectorSettings
from tasks.runtime import DEFAULT_APP_BLOCK, business_run_name
from tasks.sync import find_connections
from tasks.verify import (
    describe_disconnected,
    report_held_items,
    summarise_checks,
    verify_connection,
)


class VerifyParams(BaseModel):
    """Which connections to check."""

    business: str = Field(
        default="",
        description="Business slug; leave empty to check every connected or expired business "
        "(disconnected ones are listed, not checked).",
    )
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block (the app registration)."
    )
    expiry_warning_days: int = Field(
        default=14,
        ge=0,
        description="Warn (event nomi.connection.expiring, a notification to ops) when the "
        "consent ends within this many days.",
    )


#: The run of a form left as it is: every connection, warning 30 days ahead.
DEFAULT_VERIFY = VerifyParams()


class VerifyFailedError(RuntimeError):
    """At least one connection could not be checked (Nomi unavailable or a task failed)."""


@flow(
    name="verify-nomi-connection",
    flow_run_name=business_run_name("verify", default="all"),
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
)
def verify_nomi_connection(params: VerifyParams = DEFAULT_VERIFY) -> list[dict[str, Any]]:
    """Check Nomi connections: token, organisation still granted, scopes, a list readable, consent.

    Runs for one business or for every business whose connection is `connected` or `expired`.
    A `disconnected` business (disconnect-from-nomi) is listed as `disconnected`, with a revoke
    still owed to Nomi if there is one, but not checked: no event, no failure.
    Each check is stored (connection history) and emits `nomi.connection.verified`,
    `nomi.connection.expiring` (consent ends within `expiry_warning_days`: plan a reconnect) or
    `nomi.connection.expired` (Nomi refuses it or the consent ended: the connection is marked
    `expired`; run reconnect-to-nomi). The artifact `connection-checks` lists every check. Each
    checked business with items held in review for more than a day emits `nomi.items.held`
    (their external ids and reasons). The run fails only when a connection could not be checked
    at all. Scheduled daily.
    """
    logger = get_run_logger()
    url = ConnectorSettings().database_url
    app = cast(NomiApp, NomiApp.load(params.app_block))
    statuses = [
        ConnectionStatus.CONNECTED.value,
        ConnectionStatus.EXPIRED.value,
        ConnectionStatus.DISCONNECTED.value,
    ]
    found: list[SyncTarget] = find_connections(url, params.business or None, statuses)
    # Disconnected on purpose: reported as such, never checked at Nomi, no event, no failure.
    checks: list[dict[str, Any]] = [
        describe_disconnected(url, t) for t in found if t.status == ConnectionStatus.DISCONNECTED
    ]
    targets = [t for t in found if t.status != ConnectionStatus.DISCONNECTED]
    futures = [
        verify_connection.submit(url, app, t, t.slug, params.expiry_warning_days) for t in targets
    ]
    for target, future in zip(targets, futures, strict=True):
        future.wait()
        if future.state.is_failed():
            checks.append({"business": target.slug, "outcome": "failed", "detail": "task failed"})
        else:
            checks.append(future.result())
    summarise_checks(checks)
    report_held_items(url, targets)
    failed = [c["business"] for c in checks if c["outcome"] == "failed"]
    logger.info("checked %d connection(s); could not check: %s", len(checks), failed or "none")
    if failed:
        raise VerifyFailedError(f"could not check {', '.join(failed)} (see the task logs)")
    return checks
