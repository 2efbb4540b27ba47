"""Tasks of connect-to-nomi and reconnect-to-nomi, and the consent pause both flows share.

The state and the PKCE verifier stay in the flow's memory; tasks get the state's hash only. The
authorization code reaches the run in one of two ways, and is gone once exchanged:

* the callback (``deployments/callback.py``) saves it in a Prefect ``Secret`` block named
  ``code_block_name(flow_run_id)`` and resumes the run with the state only;
* ops paste it into the UI's resume form (``OAuthCallback.code``); the run deletes that flow-run
  input right after reading it.
"""

from __future__ import annotations

import contextlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.input.actions import delete_flow_run_input
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import Field, SecretStr

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import ensure_refresh_lock, forget_cached_credentials
from connector.connections.consent import (
    ConnectRefusedError,
    ConsentRequest,
    OrganisationChangedError,
    OrganisationTakenError,
    authorise_consent,
    check_books,
    check_organisation,
    pick_organisation,
    record_connection,
    record_failure,
)
from connector.connections.oauth_states import (
    OAuthPurpose,
    StateOutcome,
    close_state,
    hash_state,
    new_state,
    open_state,
)
from connector.store.models import short_error
from nomi.client import NomiClient
from nomi.errors import NomiError
from nomi.models import Organisation, TokenSet
from nomi.oauth import NomiOAuth
from tasks.runtime import credentials_block_name, db

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


@task(cache_policy=NO_CACHE, task_run_name="check-{purpose}-{business}")
def check_request(
    database_url: str, business: str, acting_user: str, purpose: OAuthPurpose
) -> ConsentRequest:
    """Refuse non-admins and a connect/reconnect that does not fit the connection (audited)."""
    refused: ConnectRefusedError | None = None
    with db(database_url, write=True) as session:
        try:
            request = authorise_consent(
                session, business_slug=business, acting_email=acting_user, purpose=purpose
            )
        except ConnectRefusedError as exc:
            refused = exc  # commit the audit row, then refuse
    if refused is not None:
        raise refused
    get_run_logger().info("%s of %s asked by %s: allowed", purpose, business, acting_user)
    return request


@task(cache_policy=NO_CACHE, task_run_name="open-state-{request.business_slug}")
def open_oauth_state(
    database_url: str,
    request: ConsentRequest,
    *,
    state_hash: str,
    flow_run_id: uuid.UUID,
    purpose: OAuthPurpose,
    timeout_seconds: int,
) -> uuid.UUID:
    """Store the hash of the run's state with its expiry; returns the row id."""
    with db(database_url, write=True) as session:
        row = open_state(
            session,
            state_hash=state_hash,
            flow_run_id=flow_run_id,
            business_id=request.business_id,
            purpose=purpose,
            ttl=timedelta(seconds=timeout_seconds),
        )
        return row.id


@task(cache_policy=NO_CACHE, task_run_name="close-state-{outcome}")
def close_oauth_state(database_url: str, state_id: uuid.UUID, outcome: StateOutcome) -> None:
    """Record how the run ended; the state can no longer be used."""
    with db(database_url, write=True) as session:
        close_state(session, state_id, outcome=outcome)


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


@task(cache_policy=NO_CACHE, task_run_name="exchange-code")
def exchange_code(app: NomiApp, code: SecretStr, code_verifier: SecretStr) -> TokenSet:
    """Trade the authorization code for tokens (never retried: a code is single use)."""
    with app.oauth() as oauth:
        tokens = oauth.exchange_code(code.get_secret_value(), code_verifier.get_secret_value())
    get_run_logger().info("authorization code exchanged; scopes: %s", " ".join(tokens.scopes))
    return tokens


class _FreshTokens:
    """A token provider over a just-issued token set (no refresh: it is minutes old)."""

    def __init__(self, tokens: TokenSet) -> None:
        self._token = tokens.access_token.get_secret_value()

    def access_token(self) -> str:
        """The fresh access token."""
        return self._token

    def refresh_after_rejection(self, rejected: str) -> str:
        """A fresh token is never refreshed."""
        raise NomiError("Nomi rejected a token it has just issued")


@task(
    cache_policy=NO_CACHE,
    task_run_name="read-organisations",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=lambda _task, _run, state: _is_transient(state),
)
def read_organisations(app: NomiApp, tokens: TokenSet) -> list[Organisation]:
    """The organisations the new token may act for (``GET /connections``)."""
    with NomiClient(app.api_base_url, "", _FreshTokens(tokens)) as nomi:
        return nomi.connections()


def _is_transient(state: Any) -> bool:
    """Retry only failures the Nomi client calls transient."""
    from nomi.errors import TransientError

    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


@task(cache_policy=NO_CACHE, task_run_name="check-books-{request.business_slug}")
def check_books_free(
    database_url: str,
    request: ConsentRequest,
    *,
    purpose: OAuthPurpose,
    organisation: Organisation,
    shared_books: bool,
) -> list[str]:
    """Refuse an organisation another business holds unless shared_books (audited either way).

    Returns the businesses that share it (empty: nobody else holds it).
    """
    refused: OrganisationTakenError | None = None
    with db(database_url, write=True) as session:
        try:
            shares_with = check_books(
                session,
                request=request,
                purpose=purpose,
                organisation=organisation,
                shared_books=shared_books,
            )
        except OrganisationTakenError as exc:
            refused = exc  # commit the audit row, then refuse
    if refused is not None:
        raise refused
    if shares_with:
        get_run_logger().warning(
            "%s shares the books of %s with %s (shared_books=true)",
            request.business_slug,
            organisation.tenant_name,
            ", ".join(shares_with),
        )
    return shares_with


@task(cache_policy=NO_CACHE, task_run_name="revoke-tokens")
def revoke_tokens(app: NomiApp, tokens: TokenSet) -> None:
    """Revoke tokens the run will not keep (a refused organisation change)."""
    with app.oauth() as oauth:
        if tokens.refresh_token is not None:
            oauth.revoke(tokens.refresh_token)
        oauth.revoke(tokens.access_token, token_type_hint="access_token")
    get_run_logger().info("tokens of the refused consent revoked")


@task(cache_policy=NO_CACHE, task_run_name="save-credentials-{business}")
def save_credentials(
    business: str, tokens: TokenSet, organisation: Organisation, consent_expires_at: datetime
) -> str:
    """Save (or overwrite) the connection's credentials block; returns its name."""
    name = credentials_block_name(business)
    NomiCredentials.from_tokens(tokens, organisation, consent_expires_at=consent_expires_at).save(
        name, overwrite=True, _sync=True
    )  # type: ignore[call-arg]
    forget_cached_credentials(name)  # this process must re-read the new tokens
    ensure_refresh_lock(name)  # created once here, so workers never race to create it
    get_run_logger().info("credentials block %s saved", name)
    return name


def delete_credentials(business: str) -> None:
    """Delete a credentials block saved by a run that then failed."""
    with contextlib.suppress(ObjectNotFound, ValueError):
        NomiCredentials.delete(credentials_block_name(business), _sync=True)  # type: ignore[call-arg]


@task(cache_policy=NO_CACHE, task_run_name="record-connection-{request.business_slug}")
def record_connected(
    database_url: str,
    request: ConsentRequest,
    *,
    purpose: OAuthPurpose,
    organisation: Organisation,
    scopes: list[str],
    block_name: str,
    consent_expires_at: datetime,
    shared_books: bool = False,
) -> uuid.UUID:
    """Mark the business connected to the organisation (row, settings, audit); returns its id."""
    refused: OrganisationTakenError | None = None
    with db(database_url, write=True) as session:
        try:
            connection = record_connection(
                session,
                request=request,
                purpose=purpose,
                organisation=organisation,
                scopes=scopes,
                credentials_block_name=block_name,
                consent_expires_at=consent_expires_at,
                shared_books=shared_books,
            )
        except OrganisationTakenError as exc:
            refused = exc  # taken meanwhile: commit the refusal's audit row (nothing else)
    if refused is not None:
        raise refused
    return connection.id


@task(cache_policy=NO_CACHE, task_run_name="record-failure-{request.business_slug}")
def record_failed(
    database_url: str, request: ConsentRequest, *, purpose: OAuthPurpose, reason: str
) -> None:
    """Audit a run that ended without a connection."""
    with db(database_url, write=True) as session:
        record_failure(session, request=request, purpose=purpose, reason=reason)


def consent_expiry() -> datetime:
    """When a consent given now expires (Nomi: one year)."""
    return datetime.now(UTC) + timedelta(days=365)


def publish_summary(
    *,
    business: str,
    purpose: OAuthPurpose,
    organisation: Organisation,
    scopes: list[str],
    consent_expires_at: datetime,
    follow_ups: dict[str, str],
) -> None:
    """A markdown summary of the (re)connection, keyed per business."""
    lines = [
        f"# {business}: {purpose} to Nomi completed",
        "",
        "| | |",
        "|---|---|",
        f"| Organisation | {organisation.tenant_name} |",
        f"| Tenant id | `{organisation.tenant_id}` |",
        f"| Scopes | {' '.join(scopes)} |",
        f"| Consent expires | {consent_expires_at:%Y-%m-%d} |",
        f"| Credentials block | `{credentials_block_name(business)}` |",
    ]
    lines += [f"| {name} | {outcome} |" for name, outcome in follow_ups.items()]
    create_markdown_artifact(
        "\n".join(lines) + "\n",
        key=f"{purpose}-summary-{business}",
        description=f"Result of the last {purpose} of {business}",
    )


@dataclass(frozen=True)
class Connected:
    """What a successful (re)connect made."""

    connection_id: uuid.UUID
    organisation: Organisation
    scopes: list[str]
    consent_expires_at: datetime
    credentials_block: str


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
    saved_block: str | None = None
    try:
        with app.oauth() as oauth:
            url = oauth.authorization_url(state, verifier)
        consent = wait_for_consent(
            authorize_url=url,
            business=business,
            state=state,
            flow_run_id=run_id,
            timeout_seconds=timeout_seconds,
        )
        if consent.error is not None or consent.code is None:
            outcome = StateOutcome.DENIED
            if consent.error == "access_denied":
                raise ConsentDeniedError("consent denied at Nomi")
            raise ConsentDeniedError(f"Nomi refused the authorization: {consent.error}")
        tokens = exchange_code(app, consent.code, SecretStr(verifier))
        chosen = pick_organisation(
            read_organisations(app, tokens), current_tenant_id=request.tenant_id
        )
        try:
            check_organisation(request, chosen, allow_change=allow_organisation_change)
            check_books_free(
                database_url,
                request,
                purpose=purpose,
                organisation=chosen,
                shared_books=shared_books,
            )
        except (OrganisationChangedError, OrganisationTakenError):
            revoke_tokens(app, tokens)
            raise
        expires = consent_expiry()
        saved_block = save_credentials(business, tokens, chosen, expires)
        try:
            connection_id = record_connected(
                database_url,
                request,
                purpose=purpose,
                organisation=chosen,
                scopes=tokens.scopes,
                block_name=saved_block,
                consent_expires_at=expires,
                shared_books=shared_books,
            )
        except OrganisationTakenError:
            # Another business took the organisation since the check (two runs at once). A
            # connect's block is deleted below, so its tokens go too; a reconnect's new tokens
            # now sit in the business's own block and stay valid for its organisation.
            if purpose == OAuthPurpose.CONNECT:
                revoke_tokens(app, tokens)
            raise
        outcome = StateOutcome.CONNECTED
    except BaseException as exc:
        if isinstance(exc, AuthorizationTimeoutError):
            outcome = StateOutcome.TIMED_OUT
        if purpose == OAuthPurpose.CONNECT and saved_block is not None:
            delete_credentials(business)
        record_failed(database_url, request, purpose=purpose, reason=_reason(exc))
        raise
    finally:
        discard_parked_code(run_id)
        close_oauth_state(database_url, state_id, outcome)
    emit_event(
        event=f"nomi.connection.{purpose}ed",
        resource={"prefect.resource.id": f"nomi.connection.{business}"},
        payload={"organisation": chosen.tenant_name, "tenant_id": chosen.tenant_id},
    )
    return Connected(
        connection_id=connection_id,
        organisation=chosen,
        scopes=tokens.scopes,
        consent_expires_at=expires,
        credentials_block=saved_block,
    )


def _reason(exc: BaseException) -> str:
    """A secret-free description of why a run failed (our errors carry no secrets)."""
    return short_error(f"{type(exc).__name__}: {exc}")


def run_follow_up(name: str, call: Callable[[], object]) -> tuple[str, bool]:
    """Run a follow-up subflow; returns (what happened, ok) instead of raising.

    A flow module that does not exist yet is skipped with a warning (the team writes them in
    parallel); any other failure is reported so the calling flow can end Failed honestly.
    """
    logger = get_run_logger()
    try:
        call()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("flows."):
            raise
        logger.warning("%s skipped: %s is not installed", name, exc.name)
        return "skipped (flow not installed)", True
    except Exception as exc:
        logger.error("%s failed: %s", name, _reason(exc))
        return f"failed: {_reason(exc)}", False
    return "completed", True
