"""The consent connect-to-nomi and reconnect-to-nomi share: `connect_with_consent` and its pause.

The state and the PKCE verifier stay in the flow's memory. The authorization code reaches the run
in one of two ways, and is gone once read: the callback (``deployments/callback.py``) parks it in
a Prefect ``Secret`` block named ``code_block_name(flow_run_id)``, or ops paste it into the resume
form (``OAuthCallback.code``), whose flow-run input the run deletes right after reading it.
"""

from __future__ import annotations

import contextlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from prefect import get_run_logger
from prefect.artifacts import create_link_artifact
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.input.actions import delete_flow_run_input
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import Field, SecretStr

from blocks.app import NomiApp
from connector.connections.consent import (
    ConnectRefusedError,
    ConsentRequest,
    OrganisationChangedError,
    OrganisationTakenError,
    check_organisation,
    pick_organisation,
)
from connector.connections.oauth_states import OAuthPurpose, StateOutcome, hash_state, new_state
from nomi.models import Organisation, TokenSet
from nomi.oauth import NomiOAuth
from tasks.connect import (
    Connected,
    check_books_free,
    check_request,
    close_oauth_state,
    consent_expiry,
    delete_credentials,
    exchange_code,
    failure_reason,
    open_oauth_state,
    read_organisations,
    record_connected,
    record_failed,
    revoke_tokens,
    save_credentials,
)
from tasks.events import emit_connection_event

PAUSE_KEY = "oauth-callback"
PAUSE_POLL_SECONDS = 1


class ConsentDeniedError(Exception):
    """The user pressed Deny at Nomi (or Nomi answered with an OAuth error)."""


class AuthorizationTimeoutError(Exception):
    """Nobody completed the consent before the run's timeout."""


class OAuthCallback(RunInput):
    """What resumes a waiting connect/reconnect run (the callback fills it; ops may paste)."""

    state: str = Field(description="The state Nomi sent back (the callback fills it in).")
    code: str | None = Field(
        default=None,
        description=(
            "Leave empty when the callback resumed the run. Paste the authorization code here "
            "only if the callback could not be reached; it is deleted once read."
        ),
    )
    error: str | None = Field(
        default=None, description="The OAuth error Nomi sent back (access_denied on Deny)."
    )


def code_block_name(flow_run_id: uuid.UUID | str) -> str:
    """Name of the `Secret` block the callback parks one run's authorization code in."""
    return f"nomi-oauth-code-{flow_run_id}"


@dataclass(frozen=True)
class Consent:
    """What came back from Nomi: the code (never logged) or the OAuth error."""

    code: SecretStr | None
    error: str | None


def ask_for_consent(
    app: NomiApp,
    *,
    business: str,
    state: str,
    verifier: str,
    flow_run_id: uuid.UUID,
    timeout_seconds: int,
) -> SecretStr:
    """Show the authorize link, wait for the person's answer; returns the authorization code.

    Raises:
        ConsentDeniedError: Deny at Nomi, or another OAuth error.
        AuthorizationTimeoutError: Nobody answered within ``timeout_seconds``.
        ConnectRefusedError: The run was resumed with another state, or without a code.
    """
    with app.oauth() as oauth:
        url = oauth.authorization_url(state, verifier)
    consent = wait_for_consent(
        authorize_url=url,
        business=business,
        state=state,
        flow_run_id=flow_run_id,
        timeout_seconds=timeout_seconds,
    )
    if consent.error is not None or consent.code is None:
        if consent.error == "access_denied":
            raise ConsentDeniedError("consent denied at Nomi")
        raise ConsentDeniedError(f"Nomi refused the authorization: {consent.error}")
    return consent.code


def wait_for_consent(
    *,
    authorize_url: str,
    business: str,
    state: str,
    flow_run_id: uuid.UUID,
    timeout_seconds: int,
) -> Consent:
    """Show the authorize link, pause until the callback (or ops) resumes, check the state.

    Raises:
        AuthorizationTimeoutError: Nobody resumed the run within ``timeout_seconds``.
        ConnectRefusedError: The run was resumed with another state.
    """
    create_link_artifact(
        authorize_url,
        link_text=f"Authorize {business} in Nomi",
        key=f"authorize-{business}",
        description=f"Open to connect {business} to Nomi (valid {timeout_seconds} s).",
    )
    description = (
        f"**Connect {business} to Nomi**: open [the Nomi consent page]({authorize_url}), sign "
        "in, choose the organisation and press Allow. Nomi sends the browser back to the "
        "connector's callback, which resumes this run by itself: do not fill in this form "
        "unless the callback could not be reached (then paste the `state` and `code` from the "
        f"address bar). The link is valid for {timeout_seconds} s."
    )
    try:
        answer = pause_flow_run(
            wait_for_input=OAuthCallback.with_initial_data(description=description),
            timeout=timeout_seconds,
            poll_interval=PAUSE_POLL_SECONDS,
            key=PAUSE_KEY,
        )
    except FlowPauseTimeout:
        _running_again(flow_run_id)
        raise AuthorizationTimeoutError(
            f"no authorization within {timeout_seconds} s: the consent link has expired; "
            "start the run again to get a new link"
        ) from None
    pasted = answer.code
    if pasted is not None:
        delete_flow_run_input(answer.metadata.key, flow_run_id=flow_run_id)
        get_run_logger().info("authorization code pasted in the resume form: input deleted")
    if not hmac.compare_digest(answer.state.encode(), state.encode()):
        raise ConnectRefusedError("the run was resumed with a state it did not issue: refused")
    if answer.error is not None:
        return Consent(code=None, error=answer.error)
    if pasted is not None:
        return Consent(code=SecretStr(pasted), error=None)
    return Consent(code=_take_parked_code(flow_run_id), error=None)


def _running_again(flow_run_id: uuid.UUID) -> None:
    """Take an expired pause back to Running, so the run ends with our message, not Prefect's."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(), force=True)


def _take_parked_code(flow_run_id: uuid.UUID) -> SecretStr:
    """Read the code the callback parked in a Secret block, and delete the block."""
    name = code_block_name(flow_run_id)
    try:
        secret: Secret[str] = Secret.load(name, _sync=True)  # type: ignore[call-arg,assignment]
    except ValueError:
        raise ConnectRefusedError(
            "the run was resumed without an authorization code: connect again"
        ) from None
    value = secret.get()
    discard_parked_code(flow_run_id)
    return SecretStr(str(value))


def discard_parked_code(flow_run_id: uuid.UUID) -> None:
    """Delete the run's parked code block if it is there."""
    with contextlib.suppress(ObjectNotFound, ValueError):
        Secret.delete(code_block_name(flow_run_id), _sync=True)  # type: ignore[call-arg]


def connect_with_consent(
    *,
    database_url: str,
    app: NomiApp,
    business: str,
    acting_user: str,
    purpose: OAuthPurpose,
    timeout_seconds: int,
    allow_organisation_change: bool = False,
    shared_books: bool = False,
) -> Connected:
    """The consent both flows share: check, pause for Nomi, exchange, save, record; all or nothing.

    Called from the flow (it pauses the flow run). Whatever fails, the state row is closed with its
    outcome, a parked code is deleted, and a connect leaves no credentials block and no connected
    row behind. An organisation another business holds is refused (its tokens revoked) unless
    ``shared_books``.

    Raises:
        PermissionDeniedError: The acting user may not (re)connect the business.
        ConnectRefusedError: Connect twice, reconnect never-connected, another organisation, an
            organisation another business holds (`OrganisationTakenError`), ...
        ConsentDeniedError: Deny at Nomi.
        AuthorizationTimeoutError: No consent within ``timeout_seconds``.
        NomiError: Nomi refused the code or failed.
    """
    request = check_request(database_url, business, acting_user, purpose)
    run_id = uuid.UUID(str(flow_run.id))
    state = new_state()
    verifier, _ = NomiOAuth.new_pkce()
    state_id = open_oauth_state(
        database_url,
        request,
        state_hash=hash_state(state),
        flow_run_id=run_id,
        purpose=purpose,
        timeout_seconds=timeout_seconds,
    )
    outcome = StateOutcome.FAILED
    try:
        code = ask_for_consent(
            app,
            business=business,
            state=state,
            verifier=verifier,
            flow_run_id=run_id,
            timeout_seconds=timeout_seconds,
        )
        tokens = exchange_code(app, code, SecretStr(verifier))
        steps = _Steps(database_url, app, request, purpose, tokens, shared_books)
        connected = steps.keep(steps.choose(allow_change=allow_organisation_change))
        outcome = StateOutcome.CONNECTED
    except BaseException as exc:
        outcome = _outcome_of(exc)
        record_failed(database_url, request, purpose=purpose, reason=failure_reason(exc))
        raise
    finally:
        discard_parked_code(run_id)
        close_oauth_state(database_url, state_id, outcome)
    organisation = connected.organisation
    emit_connection_event(
        f"nomi.connection.{purpose}ed",
        business,
        {"organisation": organisation.tenant_name, "tenant_id": organisation.tenant_id},
    )
    return connected


@dataclass(frozen=True)
class _Steps:
    """The steps of `connect_with_consent` once Nomi has issued tokens."""

    database_url: str
    app: NomiApp
    request: ConsentRequest
    purpose: OAuthPurpose
    tokens: TokenSet
    shared_books: bool

    def choose(self, *, allow_change: bool) -> Organisation:
        """The organisation the consent chose, refused (tokens revoked) if it may not be used."""
        chosen = pick_organisation(
            read_organisations(self.app, self.tokens), current_tenant_id=self.request.tenant_id
        )
        with self._revoked_on(OrganisationChangedError, OrganisationTakenError):
            check_organisation(self.request, chosen, allow_change=allow_change)
            check_books_free(
                self.database_url,
                self.request,
                purpose=self.purpose,
                organisation=chosen,
                shared_books=self.shared_books,
            )
        return chosen

    def keep(self, organisation: Organisation) -> Connected:
        """Save the tokens and record the connection; a failed connect keeps no block."""
        expires = consent_expiry()
        business = self.request.business_slug
        block = save_credentials(business, self.tokens, organisation, expires)
        connect = self.purpose == OAuthPurpose.CONNECT
        try:
            # Taken since the check (two runs at once): a connect's block is deleted below, so
            # its tokens go too; a reconnect's new tokens now sit in the business's own block
            # and stay valid for its organisation.
            with self._revoked_on(OrganisationTakenError) if connect else contextlib.nullcontext():
                connection_id = record_connected(
                    self.database_url,
                    self.request,
                    purpose=self.purpose,
                    organisation=organisation,
                    scopes=self.tokens.scopes,
                    block_name=block,
                    consent_expires_at=expires,
                    shared_books=self.shared_books,
                )
        except BaseException:
            if connect:
                delete_credentials(business)
            raise
        return Connected(connection_id, organisation, self.tokens.scopes, expires, block)

    @contextlib.contextmanager
    def _revoked_on(self, *refusals: type[Exception]) -> Iterator[None]:
        """Revoke the new tokens when the block raises one of ``refusals`` (then re-raise)."""
        try:
            yield
        except refusals:
            revoke_tokens(self.app, self.tokens)
            raise


def _outcome_of(exc: BaseException) -> StateOutcome:
    """How the state is closed when the run fails with ``exc``."""
    if isinstance(exc, ConsentDeniedError):
        return StateOutcome.DENIED
    if isinstance(exc, AuthorizationTimeoutError):
        return StateOutcome.TIMED_OUT
    return StateOutcome.FAILED
