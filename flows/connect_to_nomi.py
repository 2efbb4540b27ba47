"""The connect-to-nomi flow: connect a business to a Nomi organisation through Nomi's consent."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from blocks.app import NomiApp
from connector.connections.oauth_states import OAuthPurpose
from connector.settings import ConnectorSettings
from tasks.connect import finish_connection
from tasks.consent import connect_with_consent
from tasks.runtime import DEFAULT_APP_BLOCK, business_run_name


class ConnectParams(BaseModel):
    """Which business to connect, and who asks."""

    business: str = Field(description="Slug of the business to connect (e.g. bright-smile).")
    acting_user: str = Field(
        description=(
            "Email of the person asking: an admin of the business or its accountant "
            "(case and surrounding spaces do not matter)."
        )
    )
    app_block: str = Field(
        default=DEFAULT_APP_BLOCK, description="Name of the NomiApp block (Nomi app registration)."
    )
    timeout_seconds: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description="How long the consent link stays valid; the run fails after that.",
    )
    shared_books: bool = Field(
        default=False,
        description=(
            "Allow a Nomi organisation that another business is already connected to: only when "
            "the two businesses really keep one set of books (audited). Off: such a consent is "
            "refused, naming that business, and nothing is stored."
        ),
    )


@flow(
    name="connect-to-nomi",
    flow_run_name=business_run_name("connect", default="unknown"),
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
    persist_result=False,
)
def connect_to_nomi(params: ConnectParams) -> str:
    """Connect a business to Nomi (admins and accountants of the business only).

    1. Checks the acting user may connect the business and that it is not connected yet
       (use reconnect-to-nomi for a connection that exists).
    2. Shows an **Authorize** link (Artifacts tab, key `authorize-{business}`, and on the
       Resume form) and pauses. Open the link, sign in to Nomi, pick the organisation, press
       Allow: Nomi's redirect reaches the connector's callback, which resumes this run. Do not
       fill in the Resume form yourself unless the callback was unreachable.
    3. Refuses an organisation another business is connected to (naming it; its tokens are
       revoked, nothing is stored) unless `shared_books` is on.
    4. Exchanges the code, saves the tokens in the block `nomi-credentials-{business}`, marks the
       connection connected (consent valid one year), then checks the connection and runs the
       first full sync of the Nomi lists.

    Fails with a clear message on Deny ("consent denied at Nomi"), when nobody completes the
    consent within `timeout_seconds`, or when another business holds the organisation; nothing
    is half-made then.
    """
    settings = ConnectorSettings()
    app: NomiApp = NomiApp.load(params.app_block, _sync=True)  # type: ignore[call-arg,assignment]
    connected = connect_with_consent(
        database_url=settings.database_url,
        app=app,
        business=params.business,
        acting_user=params.acting_user,
        purpose=OAuthPurpose.CONNECT,
        timeout_seconds=params.timeout_seconds,
        shared_books=params.shared_books,
    )
    follow_ups = {
        "verify": lambda: _verify(params),
        "first sync (full)": lambda: _first_sync(params),
    }
    return finish_connection(params.business, OAuthPurpose.CONNECT, connected, follow_ups)


def _verify(params: ConnectParams) -> object:
    """Run verify-nomi-connection for the business."""
    from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection

    return verify_nomi_connection(
        VerifyParams(business=params.business, app_block=params.app_block)
    )


def _first_sync(params: ConnectParams) -> object:
    """Run a full sync-nomi-reference-data for the business."""
    from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data

    return sync_nomi_reference_data(
        SyncParams(business=params.business, app_block=params.app_block, mode="full")
    )
