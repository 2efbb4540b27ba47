"""Tasks of connect-to-nomi and reconnect-to-nomi, and what follows a (re)connection.

The steps `tasks.consent.connect_with_consent` runs (check the request, open and close the OAuth
state, exchange the code, choose and check the organisation, save the tokens, record), then the
follow-up runs and the summary artifact. Tasks get the state's hash only, never the state.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import ObjectNotFound
from pydantic import SecretStr
from sqlmodel import Session

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.locks import ensure_lock, publish_lock_name
from blocks.tokens import ensure_refresh_lock, forget_cached_credentials
from connector.connections.consent import (
    ConnectRefusedError,
    ConsentRequest,
    OrganisationTakenError,
    authorise_consent,
    check_books,
    record_connection,
    record_failure,
)
from connector.connections.oauth_states import OAuthPurpose, StateOutcome, close_state, open_state
from connector.store.base import short_error
from nomi.client import NomiClient
from nomi.errors import NomiError, TransientError
from nomi.models import Organisation, TokenSet
from tasks.runtime import credentials_block_name, db, retry_on

T = TypeVar("T")


def write_keeping_refusal(
    database_url: str, refusal: type[Exception], call: Callable[[Session], T]
) -> T:
    """Run ``call`` in a write session; a ``refusal`` it raises is raised after the commit.

    The library audits a refusal in the caller's transaction, so the audit row stays this way.
    """
    refused: Exception | None = None
    with db(database_url, write=True) as session:
        try:
            return call(session)
        except refusal as exc:
            refused = exc  # commit the audit row, then refuse
    assert refused is not None
    raise refused


@task(cache_policy=NO_CACHE, task_run_name="check-{purpose}-{business}")
def check_request(
    database_url: str, business: str, acting_user: str, purpose: OAuthPurpose
) -> ConsentRequest:
    """Refuse non-admins and a connect/reconnect that does not fit the connection (audited)."""
    request = write_keeping_refusal(
        database_url,
        ConnectRefusedError,
        lambda session: authorise_consent(
            session, business_slug=business, acting_email=acting_user, purpose=purpose
        ),
    )
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
    retry_condition_fn=retry_on(TransientError),
)
def read_organisations(app: NomiApp, tokens: TokenSet) -> list[Organisation]:
    """The organisations the new token may act for (``GET /connections``)."""
    with NomiClient(app.api_base_url, "", _FreshTokens(tokens)) as nomi:
        return nomi.connections()


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
    shares_with = write_keeping_refusal(
        database_url,
        OrganisationTakenError,
        lambda session: check_books(
            session,
            request=request,
            purpose=purpose,
            organisation=organisation,
            shared_books=shared_books,
        ),
    )
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
    ensure_lock(publish_lock_name(business))  # and its first publish run finds its slot
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
    """Mark the business connected to the organisation (row, settings, audit); returns its id.

    An organisation taken meanwhile is refused, and only the refusal's audit row is committed.
    """
    connection = write_keeping_refusal(
        database_url,
        OrganisationTakenError,
        lambda session: record_connection(
            session,
            request=request,
            purpose=purpose,
            organisation=organisation,
            scopes=scopes,
            credentials_block_name=block_name,
            consent_expires_at=consent_expires_at,
            shared_books=shared_books,
        ),
    )
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


@dataclass(frozen=True)
class Connected:
    """What a successful (re)connect made."""

    connection_id: uuid.UUID
    organisation: Organisation
    scopes: list[str]
    consent_expires_at: datetime
    credentials_block: str


def failure_reason(exc: BaseException) -> str:
    """A secret-free description of why a run failed (our errors carry no secrets)."""
    return short_error(f"{type(exc).__name__}: {exc}")


def run_follow_up(name: str, call: Callable[[], object]) -> tuple[str, bool]:
    """Run a follow-up subflow; returns (what happened, ok) instead of raising.

    A failure is reported, so the calling flow can end Failed honestly.
    """
    try:
        call()
    except Exception as exc:
        get_run_logger().error("%s failed: %s", name, failure_reason(exc))
        return f"failed: {failure_reason(exc)}", False
    return "completed", True


def finish_connection(
    business: str,
    purpose: OAuthPurpose,
    connected: Connected,
    follow_ups: dict[str, Callable[[], object]],
) -> str:
    """Run the follow-ups in order, publish the summary; returns the flow's message.

    Raises:
        RuntimeError: A follow-up failed (the connection stays made; the summary says which).
    """
    outcomes = {name: run_follow_up(name, call) for name, call in follow_ups.items()}
    publish_summary(
        business=business,
        purpose=purpose,
        organisation=connected.organisation,
        scopes=connected.scopes,
        consent_expires_at=connected.consent_expires_at,
        follow_ups={name: outcome for name, (outcome, _) in outcomes.items()},
    )
    organisation = connected.organisation.tenant_name
    failed = [name for name, (_, ok) in outcomes.items() if not ok]
    if failed:
        raise RuntimeError(
            f"{business} is {purpose}ed to {organisation}, "
            f"but {' and '.join(failed)} failed: see those runs"
        )
    message = f"{business} {purpose}ed to {organisation}"
    get_run_logger().info(message)
    return message


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
