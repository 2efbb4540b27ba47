"""Tasks of disconnect-from-nomi: check and mark, revoke at Nomi, forget the tokens, record.

Tasks pass block names, never tokens. Tokens Nomi could not revoke wait in the block
``pending_revoke_block_name(slug)`` until a later disconnect run revokes them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import BlockTokenProvider, forget_cached_credentials, refresh_lock_name
from connector.connections.disconnect import (
    DisconnectRefusedError,
    DisconnectRequest,
    RevokeOutcome,
    authorise_disconnect,
    record_disconnect,
)
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError, NomiError, RejectedError
from nomi.retry import RetryPolicy
from tasks.connect import write_keeping_refusal
from tasks.runtime import db

#: The client's retries while revoking: enough for a blip, short enough to tell ops soon.
REVOKE_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, max_total=30.0)


def pending_revoke_block_name(business_slug: str) -> str:
    """Name of the block holding a disconnected business's tokens until Nomi revokes them."""
    return f"nomi-revoke-pending-{business_slug}"


@dataclass(frozen=True)
class Revoked:
    """What Nomi did with a connection's tokens (``detail`` holds no secret)."""

    outcome: RevokeOutcome
    detail: str


@task(cache_policy=NO_CACHE, task_run_name="check-disconnect-{business}")
def check_disconnect(database_url: str, business: str, acting_user: str) -> DisconnectRequest:
    """Refuse non-admins (audited); mark the connection ``disconnected`` so nothing new starts."""
    request = write_keeping_refusal(
        database_url,
        DisconnectRefusedError,
        lambda session: authorise_disconnect(
            session, business_slug=business, acting_email=acting_user
        ),
    )
    get_run_logger().info(
        "disconnect of %s asked by %s: allowed (was %s); publishing and sync stopped",
        business,
        acting_user,
        request.previous_status,
    )
    return request


@task(cache_policy=NO_CACHE, task_run_name="revoke-at-nomi-{block_name}")
def revoke_at_nomi(app: NomiApp, block_name: str, tenant_id: str | None) -> Revoked:
    """Take the organisation out of the consent (``DELETE /connections/{id}``), revoke the tokens.

    Never raises for Nomi's failures: they come back as ``PENDING`` with the reason. The
    organisation is taken out first (it needs a working access token); revoking the refresh
    token then ends the whole consent, which is what counts.
    """
    logger = get_run_logger()
    forget_cached_credentials(block_name)  # the newest tokens: another process may have rotated
    tokens = BlockTokenProvider(block_name, app)
    try:
        tokens.credentials()
    except ValueError:
        return Revoked(RevokeOutcome.NOTHING_TO_REVOKE, "no tokens left to revoke")
    notes: list[str] = []
    try:
        with NomiClient(app.api_base_url, tenant_id or "", tokens, retry=REVOKE_RETRY) as nomi:
            for organisation in nomi.connections():
                if organisation.tenant_id == tenant_id and organisation.id:
                    nomi.delete_connection(organisation.id)
                    notes.append("organisation taken out of the consent")
    except ConnectionLostError as exc:
        notes.append(f"Nomi had already ended the consent ({exc.message})")
    except RejectedError as exc:
        notes.append(f"Nomi did not take the organisation out ({exc.message})")
    except NomiError as exc:
        notes.append(f"taking the organisation out failed ({type(exc).__name__}: {exc.message})")
    credentials = tokens.credentials()  # a refresh above rotated them
    try:
        with app.oauth() as oauth:
            oauth.revoke(credentials.refresh_token)
            oauth.revoke(credentials.access_token, token_type_hint="access_token")
    except NomiError as exc:
        reason = f"{type(exc).__name__}: {exc.message}"
        logger.warning("Nomi did not revoke the tokens of %s: %s", block_name, reason)
        return Revoked(RevokeOutcome.PENDING, "; ".join([*notes, reason]))
    notes.append("tokens revoked")
    logger.info("tokens of %s revoked at Nomi: %s", block_name, "; ".join(notes))
    return Revoked(RevokeOutcome.REVOKED, "; ".join(notes))


@task(cache_policy=NO_CACHE, task_run_name="keep-for-revoke-{target}")
def keep_for_revoke(source: str, target: str) -> None:
    """Copy the tokens of block ``source`` to ``target``, from where a later run revokes them."""
    credentials = NomiCredentials.load(source, _sync=True)  # type: ignore[call-arg]
    credentials.save(target, overwrite=True, _sync=True)  # type: ignore[union-attr]
    get_run_logger().info("tokens kept in %s until Nomi revokes them", target)


@task(cache_policy=NO_CACHE, task_run_name="delete-credentials-{block_name}")
def delete_credentials_and_lock(block_name: str) -> None:
    """Delete a credentials block and its refresh lock (``nomi-refresh-<block>``).

    The block is deleted while holding the lock, so that a refresh in flight in another process
    finishes saving first instead of writing the block back after it was deleted.
    """
    lock = refresh_lock_name(block_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(lock)
            exists = True
        except ObjectNotFound:
            exists = False
        held = concurrency(lock, occupy=1, lease_duration=60) if exists else None
        with held or contextlib.nullcontext(), contextlib.suppress(ObjectNotFound, ValueError):
            NomiCredentials.delete(block_name, _sync=True)  # type: ignore[call-arg]
        if exists:
            with contextlib.suppress(ObjectNotFound):
                client.delete_global_concurrency_limit_by_name(lock)
    forget_cached_credentials(block_name)
    get_run_logger().info("credentials block %s and its refresh lock deleted", block_name)


@task(cache_policy=NO_CACHE, task_run_name="record-disconnect-{request.business_slug}")
def record_disconnected(database_url: str, request: DisconnectRequest, revoked: Revoked) -> None:
    """Forget the credentials block on the connection; audit the disconnect with its outcome."""
    with db(database_url, write=True) as session:
        record_disconnect(session, request=request, outcome=revoked.outcome, detail=revoked.detail)


def publish_disconnect_summary(request: DisconnectRequest, revoked: Revoked, message: str) -> None:
    """A markdown summary of the disconnect, keyed per business."""
    lines = [
        f"# {request.business_slug}: disconnected from Nomi",
        "",
        message,
        "",
        "| | |",
        "|---|---|",
        f"| Organisation | {request.organisation_name or '-'} |",
        f"| Tenant id | `{request.tenant_id or '-'}` |",
        f"| Status before | {request.previous_status} |",
        f"| Revoke at Nomi | **{revoked.outcome.value}** |",
        f"| Detail | {revoked.detail.replace('|', '/')} |",
        "| Kept | settings, rules, items, history |",
    ]
    create_markdown_artifact(
        "\n".join(lines) + "\n",
        key=f"disconnect-summary-{request.business_slug}",
        description=f"Result of the last disconnect of {request.business_slug}",
    )
