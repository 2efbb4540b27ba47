"""The disconnect-from-nomi flow: end a business's Nomi connection, here and at Nomi."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.connections.disconnect import RevokeOutcome
from connector.settings import ConnectorSettings
from tasks.disconnect import (
    check_disconnect,
    delete_credentials_and_lock,
    keep_for_revoke,
    pending_revoke_block_name,
    publish_disconnect_summary,
    record_disconnected,
    revoke_at_nomi,
)
from tasks.events import emit_connection_event
from tasks.runtime import DEFAULT_APP_BLOCK, business_run_name


class DisconnectParams(BaseModel):
    """Which business to disconnect, and who asks."""

    business: str = Field(description="Slug of the business to disconnect (e.g. bright-smile).")
    acting_user: str = Field(
        description="Email of the person asking: an admin of the business or its accountant."
    )
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block (Nomi app registration)."
    )


class RevokePendingError(RuntimeError):
    """Disconnected here, but Nomi did not revoke the tokens: run the disconnect again."""


@flow(
    name="disconnect-from-nomi",
    flow_run_name=business_run_name("disconnect", default="unknown"),
    persist_result=False,
)
def disconnect_from_nomi(params: DisconnectParams) -> str:
    """Disconnect a business from Nomi (admins and accountants of the business only, audited).

    1. Checks the acting user may, and marks the connection `disconnected` at once: publishing,
       sync and verify skip the business from then on (items stay Ready).
    2. At Nomi: takes the organisation out of the consent and revokes the tokens.
    3. Deletes the credentials block `nomi-credentials-{business}` and its refresh lock.

    Settings, rules, items and history are kept: reconnect-to-nomi (same organisation) connects
    the business again and publishes what waited. The summary is the artifact
    `disconnect-summary-{business}`.

    **Nomi unreachable?** The business is disconnected here all the same; the tokens wait in the
    block `nomi-revoke-pending-{business}` and the run **fails** saying the revoke must be
    retried: run this flow again for the business (when Nomi is back) to revoke them. Running it
    on a business already disconnected does exactly that, and nothing else.
    """
    logger = get_run_logger()
    url = ConnectorSettings().database_url
    request = check_disconnect(url, params.business, params.acting_user)
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    pending = pending_revoke_block_name(request.business_slug)
    # The connection's own block; after an earlier run Nomi did not answer, the kept tokens.
    source = request.credentials_block_name or pending
    revoked = revoke_at_nomi(app, source, request.tenant_id)
    if revoked.outcome == RevokeOutcome.PENDING and source != pending:
        keep_for_revoke(source, pending)
    if source != pending or revoked.outcome == RevokeOutcome.REVOKED:
        delete_credentials_and_lock(source)
    record_disconnected(url, request, revoked)
    emit_connection_event(
        "nomi.connection.disconnected",
        request.business_slug,
        {"revoke": revoked.outcome.value, "organisation": request.organisation_name},
    )
    slug = request.business_slug
    if revoked.outcome == RevokeOutcome.PENDING:
        message = (
            f"{slug} is disconnected here (publishing and sync stopped), but Nomi did not revoke "
            f"its tokens ({revoked.detail}). The revoke must be retried: run "
            f"disconnect-from-nomi for {slug} again once Nomi is reachable"
        )
    elif revoked.outcome == RevokeOutcome.REVOKED:
        message = f"{slug} disconnected from {request.organisation_name}; tokens revoked at Nomi"
    else:
        message = f"{slug} is disconnected; no tokens were left to revoke at Nomi"
    publish_disconnect_summary(request, revoked, message)
    if revoked.outcome == RevokeOutcome.PENDING:
        raise RevokePendingError(message)
    logger.info(message)
    return message
