"""The reconnect-to-nomi flow: renew a business's Nomi consent, then publish what waited."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from blocks.app import NomiApp
from connector.connections.oauth_states import OAuthPurpose
from connector.settings import ConnectorSettings
from flows.connect_to_nomi import ConnectParams
from tasks.connect import finish_connection
from tasks.consent import connect_with_consent
from tasks.runtime import business_run_name


class ReconnectParams(ConnectParams):
    """Which business to reconnect, and who asks (the connect form, plus one choice)."""

    business: str = Field(description="Slug of the business to reconnect (e.g. bright-smile).")
    allow_organisation_change: bool = Field(
        default=False,
        description=(
            "Allow the consent to choose a different Nomi organisation than the one the business "
            "is connected to. Off: such a consent is refused and nothing changes."
        ),
    )


@flow(
    name="reconnect-to-nomi",
    flow_run_name=business_run_name("reconnect", default="unknown"),
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    persist_result=False,
)
def reconnect_to_nomi(params: ReconnectParams) -> str:
    """Renew a business's Nomi consent (admins and accountants of the business only).

    Use it when a connection expired (Nomi consents last a year), was revoked, or its credentials
    changed. Settings, rules, items and history are kept.

    1. Shows an **Authorize** link (Artifacts tab, key `authorize-{business}`, and on the
       Resume form) and pauses. Open it, sign in to Nomi, pick the **same** organisation, press
       Allow: the connector's callback resumes this run.
    2. A different organisation is refused (its new tokens are revoked, nothing changes) unless
       `allow_organisation_change` is on; so is an organisation another business is connected
       to, unless `shared_books` is on.
    3. Saves the new tokens over `nomi-credentials-{business}`, marks the connection connected,
       syncs the Nomi lists, then publishes the items that waited while it was down.

    Fails with a clear message on Deny, on timeout, when another organisation was chosen, or
    when another business holds the organisation.
    """
    settings = ConnectorSettings()
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    connected = connect_with_consent(
        database_url=settings.database_url,
        app=app,
        business=params.business,
        acting_user=params.acting_user,
        purpose=OAuthPurpose.RECONNECT,
        timeout_seconds=params.timeout_seconds,
        allow_organisation_change=params.allow_organisation_change,
        shared_books=params.shared_books,
    )
    follow_ups = {"sync": lambda: _sync(params), "publish what waited": lambda: _publish(params)}
    return finish_connection(params.business, OAuthPurpose.RECONNECT, connected, follow_ups)


def _sync(params: ReconnectParams) -> object:
    """Run sync-nomi-reference-data for the business."""
    from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data

    return sync_nomi_reference_data(
        SyncParams(business=params.business, app_block=params.app_block)
    )


RECONNECT_LOCK_WAIT_SECONDS = 600.0


def _publish(params: ReconnectParams) -> object:
    """Publish what waited while the connection was down."""
    from flows.auto_publish_to_nomi import AutoPublishParams, auto_publish_to_nomi

    return auto_publish_to_nomi(
        AutoPublishParams(
            business=params.business,
            after_reconnect=True,
            app_block=params.app_block,
            # A scheduled sweep may hold the business's publishing slot right now; it publishes
            # only auto-publish items, so wait for it rather than skip what waited.
            lock_wait_seconds=RECONNECT_LOCK_WAIT_SECONDS,
        )
    )
