"""No secret leaks anywhere ops, analysts or an attacker with read access could look.

One business goes through its whole life under the Prefect test server, against the sandbox over
HTTP: connect through the callback (with its verify and full-sync subflows), an incremental sync
after the access token expired (a refresh), auto-publish while Nomi rejects a token, fails once
and refuses one expense (client errors), reconnect after the consent ran out (with its sync and
publish subflows), and finally a connection whose refresh token was revoked at Nomi. Every
secret the sandbox handed out is captured at the source (each access and refresh token it
issued, each authorization code, each PKCE verifier it was sent) along with the client secret.
Then everything is scanned: the logs of every flow and task run, every artifact, every flow
run's parameters, state message and run input, every task run, the events of the test, every
row of every connector table, and the texts and reprs of the exceptions and objects involved.
The Prefect API must also serve the blocks' secret fields masked unless asked for secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterStartTime,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import BlockTokenProvider, forget_cached_credentials
from connector.rules.vocabulary import ConnectionStatus
from connector.store.models import Business, Connection, ConnectionSettings, Item
from flows.auto_publish_to_nomi import AutoPublishParams, auto_publish_to_nomi
from flows.connect_to_nomi import ConnectParams, connect_to_nomi
from flows.reconnect_to_nomi import ReconnectParams, reconnect_to_nomi
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError
from sandbox.auth.tokens import TokenService
from sandbox.browser import complete_consent
from sandbox.seed import BRIGHT_SMILE, LOGINS
from sandbox.testing import SandboxHandle
from tests.connector.factories import make_item
from tests.flows.conftest import connector_db, db_session_for, sandbox
from tests.flows.connections.test_connect_support import (
    CallbackServer,
    Member,
    app_block,
    authorize_link,
    browse_callback,
    callback,
    database_text,
    make_member,
    start_flow,
    wait_until_paused,
)

__all__ = ["app_block", "callback", "connector_db", "db_session_for", "make_member", "sandbox"]

pytestmark = pytest.mark.prefect
OWNER_EMAIL, OWNER_PASSWORD = LOGINS[0][0], LOGINS[0][1]
CLIENT_SECRET = "sandbox-client-secret"
MASK = "********"


class IssuedSecrets:
    """Every secret the sandbox handed out or was sent, captured where it is made."""

    def __init__(self) -> None:
        self.values: set[str] = {CLIENT_SECRET}
        self.tokens = 0
        self.codes = 0
        self.verifiers = 0


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> IssuedSecrets:
    """Wrap the in-process sandbox's token service so no issued secret escapes the scan."""
    found = IssuedSecrets()
    issue, issue_code, exchange_code = (
        TokenService._issue,
        TokenService.issue_code,
        TokenService.exchange_code,
    )

    def _issue(self: TokenService, grant: Any) -> dict[str, Any]:
        body = issue(self, grant)
        found.values |= {body["access_token"], body.get("refresh_token") or body["access_token"]}
        found.tokens += 1
        return body

    def _issue_code(self: TokenService, **kwargs: Any) -> str:
        code = issue_code(self, **kwargs)
        found.values.add(code)
        found.codes += 1
        return code

    def _exchange_code(
        self: TokenService, client_id: str, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        found.values |= {code, verifier}
        found.verifiers += 1
        return exchange_code(self, client_id, code, redirect_uri, verifier)

    monkeypatch.setattr(TokenService, "_issue", _issue)
    monkeypatch.setattr(TokenService, "issue_code", _issue_code)
    monkeypatch.setattr(TokenService, "exchange_code", _exchange_code)
    return found


def _consent(callback: CallbackServer, slug: str, tenant_id: str) -> None:
    """Sign in as the owner at the sandbox, allow, and follow Nomi's redirect to the callback."""
    with httpx.Client(timeout=30) as browser:
        answer = complete_consent(
            browser,
            authorize_link(slug),
            email=OWNER_EMAIL,
            password=OWNER_PASSWORD,
            tenant_id=tenant_id,
        )
    assert browse_callback(callback, answer).status_code == 200


def _expense_category(app: NomiApp, block: str, tenant_id: str) -> str:
    with NomiClient(app.api_base_url, tenant_id, BlockTokenProvider(block, app)) as nomi:
        return next(c.id for c in nomi.iter_categories() if c.type == "EXPENSE")


def _prefect_texts(client: SyncPrefectClient, since: datetime) -> tuple[str, int]:
    """Logs, artifacts, parameters, states, inputs, task runs and events since ``since``."""
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
        limit=200,
    )
    ids = [r.id for r in runs]
    parts: list[str] = []
    offset = 0
    while True:
        page = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
            limit=200,
            offset=offset,
        )
        parts += [f"{log.name} {log.message}" for log in page]
        offset += len(page)
        if len(page) < 200:
            break
    logs = offset
    for run in runs:
        parts += [run.name, repr(run.parameters), repr(run.state), str(run.state_name)]
        parts.append(str(run.state.message if run.state else ""))
        inputs = client.filter_flow_run_input(
            flow_run_id=run.id, key_prefix="", limit=100, exclude_keys=set()
        )
        parts += [f"{i.key}={i.value}" for i in inputs]
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
    )
    assert artifacts, "the runs published artifacts"
    for artifact in artifacts:
        parts += [str(artifact.key), str(artifact.data), str(artifact.description)]
    for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": ids})):
        parts += [task_run.name, repr(task_run.task_inputs), repr(task_run.state)]
    query = {"occurred": {"since": since.isoformat()}, "resource": {"id_prefix": ["nomi."]}}
    events_page: dict[str, Any] = client.request(
        "POST",
        "/events/filter",
        json={"filter": query, "limit": 50},
    ).json()
    while True:
        parts += [repr(event) for event in events_page["events"]]
        if not events_page.get("next_page"):
            break
        events_page = client._client.get(events_page["next_page"]).json()
    return "\n".join(parts), logs


def _masked_block(client: SyncPrefectClient, name: str, block_type: str) -> dict[str, Any]:
    """The block document as GET /block_documents/{id} serves it (no include_secrets)."""
    document = client.read_block_document_by_name(name, block_type, include_secrets=False)
    response = client.request(
        "GET",
        "/block_documents/{id}",
        path_params={"id": document.id},
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    assert data == document.data
    return data


def test_no_secret_reaches_logs_artifacts_runs_events_tables_or_exception_texts(
    issued: IssuedSecrets,
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
    connector_db: str,
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    member = make_member()
    tenant_id = sandbox.tenant_id(BRIGHT_SMILE)
    app = cast(NomiApp, NomiApp.load(app_block))
    texts: list[str] = []  # exception texts and reprs collected on the way
    states = []

    # 1. connect through the consent pages and the callback (verify + full sync as subflows)
    run = start_flow(
        connect_to_nomi,
        ConnectParams(business=member.slug, acting_user=member.email, app_block=app_block),
    )
    wait_until_paused(f"connect-{member.slug}")
    _consent(callback, member.slug, tenant_id)
    states.append(run.join(timeout=120))
    assert states[-1].is_completed(), states[-1].message
    with db_session_for() as s:
        mine = select(Connection).where(Connection.business_id == member.business_id)
        connection = s.exec(mine).one()
        block = connection.credentials_block_name
        assert block is not None
        settings = s.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
        ).one()
        settings.auto_publish, settings.warn_new_supplier = True, False
        s.add(settings)

    # 2. an incremental sync once the access token has expired: the block refreshes it
    sandbox.admin.post("/clock/advance", json={"seconds": 1900}).raise_for_status()
    states.append(
        sync_nomi_reference_data(
            SyncParams(business=member.slug, app_block=app_block), return_state=True
        )
    )
    assert states[-1].is_completed(), states[-1].message

    # 3. auto-publish while Nomi rejects the token once, fails once and refuses one expense
    category = _expense_category(app, block, tenant_id)
    with db_session_for() as s:
        business = s.get(Business, member.business_id)
        assert business is not None
        items = [make_item(s, business=business, category_edit=category).id for _ in range(3)]
    for name in ("token_rejected", "server_error", "validation"):
        sandbox.fault(name, tenant_id=tenant_id, method="POST", path="/api/v1/expenses", count=1)
    states.append(
        auto_publish_to_nomi(
            AutoPublishParams(
                business=member.slug,
                app_block=app_block,
                batch_retry_delay_seconds=0,
            ),
            return_state=True,
        )
    )
    assert states[-1].is_completed(), states[-1].message
    with db_session_for() as s:
        outcomes = [s.get(Item, i) for i in items]
    assert sorted(str(i.status) for i in outcomes if i) == ["published", "published", "ready"]
    assert any(i and i.last_error_message for i in outcomes)  # Nomi's refusal is recorded

    # 4. the consent runs out; reconnect (sync + publish as subflows)
    with db_session_for() as s:
        row = s.get(Connection, connection.id)
        assert row is not None
        row.status = ConnectionStatus.EXPIRED
        s.add(row)
    sandbox.admin.post("/clock/advance", json={"seconds": 366 * 86400}).raise_for_status()
    run = start_flow(
        reconnect_to_nomi,
        ReconnectParams(business=member.slug, acting_user=member.email, app_block=app_block),
    )
    wait_until_paused(f"reconnect-{member.slug}")
    _consent(callback, member.slug, tenant_id)
    states.append(run.join(timeout=120))
    assert states[-1].is_completed(), states[-1].message

    # 5. the refresh token is revoked at Nomi: the next refresh is a lost connection
    creds = cast(NomiCredentials, NomiCredentials.load(block))
    with app.oauth() as oauth:
        oauth.revoke(creds.refresh_token.get_secret_value())
        oauth.revoke(creds.access_token.get_secret_value())
    forget_cached_credentials(block)
    provider = BlockTokenProvider(block, app)
    with pytest.raises(ConnectionLostError) as lost:
        provider.refresh_after_rejection(creds.access_token.get_secret_value())
    texts += [str(lost.value), repr(lost.value), repr(provider), repr(creds), str(creds)]
    texts += [repr(app), str(app), repr(app.oauth()), repr(creds.refresh_token)]
    states.append(
        verify_nomi_connection(
            VerifyParams(business=member.slug, app_block=app_block), return_state=True
        )
    )
    for state in states:
        texts += [repr(state), str(state.message)]
        result = state.result(raise_on_failure=False)
        texts += [repr(result), str(result)]

    # Every kind of secret was really issued and captured.
    assert issued.codes >= 2
    assert issued.verifiers >= 2
    assert issued.tokens >= 3  # connect, a refresh, reconnect
    # The capture saw what the connector holds: the block's pair was issued by the sandbox.
    assert creds.access_token.get_secret_value() in issued.values
    assert creds.refresh_token.get_secret_value() in issued.values
    secrets = issued.values

    with get_client(sync_client=True) as client:
        shown, logs = _prefect_texts(client, since)
        app_data = _masked_block(client, app_block, "nomi-app")
        creds_data = _masked_block(client, block, "nomi-credentials")
    assert logs > 20  # the scan really read the runs' logs
    stored = database_text(connector_db)
    assert member.slug in shown
    assert member.slug in stored
    places = {"Prefect logs, artifacts, runs, inputs and events": shown, "connector tables": stored}
    places["exception texts and reprs"] = "\n".join(texts)
    for where, text in places.items():
        leaked = sorted(s[:8] + "..." for s in secrets if s in text)
        assert not leaked, f"secrets found in {where}: {leaked}"

    # The Prefect API serves secret fields masked unless include_secrets is asked for.
    assert app_data["client_secret"] == MASK
    assert creds_data["access_token"] == MASK
    assert creds_data["refresh_token"] == MASK
    assert CLIENT_SECRET not in repr(app_data)
    assert not any(s in repr(creds_data) for s in secrets)
