"""The notify-ops flow: tell ops at once that a business's Nomi connection needs attention."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from connector.history.keys import artifact_slug
from tasks.events import CONNECTION_RESOURCE_PREFIX


class NotifyOpsParams(BaseModel):
    """What happened, to which connection (filled in from the event by the deployment trigger)."""

    resource_id: str = Field(
        description="The event's resource id (nomi.connection.{business}) or a business slug."
    )
    event: str = Field(
        default="nomi.connection.expired", description="The event that started this run."
    )
    detail: str = Field(
        default="", description="What the emitting flow said about it (the event payload)."
    )


def business_of(resource_id: str) -> str:
    """The business slug named by ``nomi.connection.<slug>`` (or the text itself)."""
    return artifact_slug(resource_id.removeprefix(CONNECTION_RESOURCE_PREFIX), fallback="unknown")


def alert_markdown(business: str, event: str, detail: str, at: datetime) -> str:
    """The artifact ops read: what happened and what to do next."""
    lines = [
        f"# Nomi connection needs attention: {business}",
        "",
        f"- **event**: `{event}`",
        f"- **when**: {at.isoformat(timespec='seconds')}",
        f"- **detail**: {detail or '(none)'}",
        "",
        "Publishing for this business has stopped; its items stay Ready and nothing is lost.",
        "",
        "**What to do**: ask an admin of the business (or its accountant) to run "
        f"`reconnect-to-nomi` for `{business}` from the Deployments page. The items that waited "
        "are published once the connection is back.",
    ]
    return "\n".join(lines)


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters.get("params")
    if isinstance(params, dict):
        resource = params.get("resource_id", "")
    else:
        resource = getattr(params, "resource_id", "")
    return f"notify-ops-{business_of(str(resource))}"


@flow(name="notify-ops", flow_run_name=_run_name, log_prints=False)
def notify_ops(params: NotifyOpsParams) -> str:
    """Tell ops that a business's Nomi connection expired or was revoked.

    Started by the `on-connection-expired` trigger when any flow emits `nomi.connection.expired`.
    Writes a markdown artifact `connection-alert-{business}` (kept with its history on the
    Artifacts page) and logs a WARNING; ops then run `reconnect-to-nomi` for that business.
    """
    business = business_of(params.resource_id)
    markdown = alert_markdown(business, params.event, params.detail, datetime.now(UTC))
    create_markdown_artifact(
        markdown,
        key=f"connection-alert-{business}",
        description=f"Nomi connection of {business} needs a reconnect",
    )
    get_run_logger().warning(
        "Nomi connection of %s needs attention (%s): run reconnect-to-nomi", business, params.event
    )
    return business
