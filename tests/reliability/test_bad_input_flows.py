"""Bad input to the flows: impossible parameters, unknown names, missing setup, non-admin actors.

Parameters are refused by the params models (the Prefect UI form and the API validate with the
same models) naming the field. Flows started for an unknown business, an unknown NomiApp block,
a business without a connection or without its settings row, or by a member who may not act,
end Failed with a message naming the problem (or, for the auto-publish sweep, skip the business
saying why) and write nothing: no connection, settings, sync, publish or OAuth-state rows, no
credentials block.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prefect.states import State
from pydantic import BaseModel, ValidationError
from sqlalchemy import func
from sqlmodel import Session, select

from blocks.credentials import NomiCredentials
from connector.connections.oauth_states import OAuthState
from connector.rules.vocabulary import ConnectionStatus, ItemStatus, Role
from connector.store.history_tables import AuditLog, PublishRun, SyncRun
from connector.store.models import Business, Connection, ConnectionSettings, Item
from flows.auto_publish_to_nomi import AutoPublishParams, auto_publish_to_nomi
from flows.connect_to_nomi import ConnectParams, connect_to_nomi
from flows.publish_items_to_nomi import PublishItemsParams, publish_items_to_nomi
from flows.reconnect_to_nomi import ReconnectParams, reconnect_to_nomi
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection
from tasks.runtime import credentials_block_name
from tests.connector.factories import make_connection, make_item
from tests.flows.conftest import connector_db, db_session_for, nomi_app, sandbox
from tests.flows.connections.test_connect_support import Member, make_member

__all__ = ["connector_db", "db_session_for", "make_member", "nomi_app", "sandbox"]

pytestmark = pytest.mark.prefect
TABLES = (Connection, ConnectionSettings, SyncRun, PublishRun, OAuthState, Item)


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (SyncParams, {"lists": ["invoices"]}, "lists.0"),
        (SyncParams, {"mode": "partial"}, "mode"),
        (SyncParams, {"lookback_seconds": -1}, "lookback_seconds"),
        (VerifyParams, {"expiry_warning_days": -5}, "expiry_warning_days"),
        (AutoPublishParams, {"batch_size": 0}, "batch_size"),
        (AutoPublishParams, {"batch_size": 1_000_000}, "batch_size"),
        (AutoPublishParams, {"after_reconnect": "sometimes"}, "after_reconnect"),
        (AutoPublishParams, {"claim_timeout_minutes": 0}, "claim_timeout_minutes"),
        (AutoPublishParams, {"limits": {"per_minute": -1}}, "limits.per_minute"),
        (AutoPublishParams, {"batch_retries": "many"}, "batch_retries"),
        (
            PublishItemsParams,
            {"business": "b", "acting_user": "a@b.example", "external_ids": []},
            "external_ids",
        ),
        (PublishItemsParams, {"business": "b", "external_ids": ["x-1"]}, "acting_user"),
        (ConnectParams, {"business": "b"}, "acting_user"),
        (ConnectParams, {"acting_user": "a@b.example"}, "business"),
        (ReconnectParams, {"business": "b", "acting_user": "a", "timeout_seconds": "x"}, None),
    ],
)
def test_params_models_refuse_impossible_values_naming_the_field(
    model: type[BaseModel], values: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(ValidationError) as refused:
        model(**values)
    where = {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}
    assert (field or "timeout_seconds") in where, where


@pytest.fixture
def use_db(connector_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", connector_db)
    return connector_db


def _counts(db_session_for: Callable[[], Session]) -> dict[str, int]:
    with db_session_for() as s:
        return {t.__name__: int(s.exec(select(func.count()).select_from(t)).one()) for t in TABLES}


def _failed_with(state: State[Any], *needles: str) -> None:
    assert state.is_failed(), state
    message = state.message or ""
    for needle in needles:
        assert needle in message, message


def _run(flow: Any, params: BaseModel) -> State[Any]:
    state: State[Any] = flow(params, return_state=True)
    return state


def test_an_unknown_app_block_fails_every_flow_by_name_and_writes_nothing(
    prefect_server: None,
    use_db: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    with db_session_for() as s:
        business = s.get(Business, member.business_id)
        assert business is not None
        make_connection(s, business=business, status=ConnectionStatus.CONNECTED)
    before = _counts(db_session_for)
    block = f"no-such-app-{uuid.uuid4().hex[:6]}"

    for flow, params in [
        (sync_nomi_reference_data, SyncParams(business=member.slug, app_block=block)),
        (verify_nomi_connection, VerifyParams(business=member.slug, app_block=block)),
        (auto_publish_to_nomi, AutoPublishParams(business=member.slug, app_block=block)),
        (
            publish_items_to_nomi,
            PublishItemsParams(
                business=member.slug,
                acting_user=member.email,
                external_ids=["x-1"],
                app_block=block,
            ),
        ),
        (
            reconnect_to_nomi,
            ReconnectParams(business=member.slug, acting_user=member.email, app_block=block),
        ),
    ]:
        _failed_with(_run(flow, params), block)

    assert _counts(db_session_for) == before
    with db_session_for() as s:
        assert s.exec(select(AuditLog)).all() == []  # the block is loaded before any check


def test_connect_with_an_unknown_app_block_fails_by_name_before_any_consent(
    prefect_server: None,
    use_db: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    block = f"no-such-app-{uuid.uuid4().hex[:6]}"
    state = _run(
        connect_to_nomi,
        ConnectParams(business=member.slug, acting_user=member.email, app_block=block),
    )

    _failed_with(state, block)
    assert _counts(db_session_for) == dict.fromkeys(_counts(db_session_for), 0)
    with db_session_for() as s:
        assert s.exec(select(AuditLog)).all() == []
    with pytest.raises(ValueError, match="Unable to find block document"):
        NomiCredentials.load(credentials_block_name(member.slug))


def test_an_unknown_business_slug_fails_every_flow_by_name_and_writes_nothing(
    use_db: str, nomi_app: str, db_session_for: Callable[[], Session]
) -> None:
    slug = "no-such-business"
    for flow, params in [
        (sync_nomi_reference_data, SyncParams(business=slug, app_block=nomi_app)),
        (verify_nomi_connection, VerifyParams(business=slug, app_block=nomi_app)),
        (auto_publish_to_nomi, AutoPublishParams(business=slug, app_block=nomi_app)),
        (
            publish_items_to_nomi,
            PublishItemsParams(
                business=slug, acting_user="a@b.example", external_ids=["x-1"], app_block=nomi_app
            ),
        ),
        (
            reconnect_to_nomi,
            ReconnectParams(business=slug, acting_user="a@b.example", app_block=nomi_app),
        ),
    ]:
        _failed_with(_run(flow, params), slug)

    assert _counts(db_session_for) == dict.fromkeys(_counts(db_session_for), 0)
    with db_session_for() as s:
        assert s.exec(select(AuditLog)).all() == []


def test_a_business_never_connected_is_refused_or_skipped_saying_so(
    use_db: str,
    nomi_app: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    with db_session_for() as s:
        business = s.get(Business, member.business_id)
        assert business is not None
        item = make_item(s, business=business).id

    _failed_with(
        _run(sync_nomi_reference_data, SyncParams(business=member.slug, app_block=nomi_app)),
        member.slug,
        "never connected",
    )
    _failed_with(
        _run(verify_nomi_connection, VerifyParams(business=member.slug, app_block=nomi_app)),
        member.slug,
        "never connected",
    )
    swept = _run(
        auto_publish_to_nomi,
        AutoPublishParams(business=member.slug, app_block=nomi_app),
    )
    assert swept.is_completed()
    summary = swept.result()
    assert summary.businesses[member.slug].skipped == "no Nomi connection"
    assert summary.published == 0

    with db_session_for() as s:
        assert s.exec(select(Connection)).all() == []
        assert s.exec(select(SyncRun)).all() == []
        left = s.get(Item, item)
    assert left is not None
    assert left.status == ItemStatus.READY  # untouched, not claimed


def test_a_connection_without_its_settings_row_is_refused_naming_the_missing_settings(
    use_db: str,
    nomi_app: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    with db_session_for() as s:
        business = s.get(Business, member.business_id)
        assert business is not None
        connection = make_connection(s, business=business, status=ConnectionStatus.CONNECTED)
        for row in s.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
        ):
            s.delete(row)
        item = make_item(s, business=business).id
    before = _counts(db_session_for)

    swept = _run(
        auto_publish_to_nomi,
        AutoPublishParams(business=member.slug, app_block=nomi_app),
    )

    assert swept.is_completed()
    skipped = swept.result().businesses[member.slug].skipped
    assert skipped is not None
    assert "settings" in skipped
    after = _counts(db_session_for)
    assert {k: v for k, v in after.items() if k != "PublishRun"} == {
        k: v for k, v in before.items() if k != "PublishRun"
    }
    with db_session_for() as s:
        left = s.get(Item, item)
    assert left is not None
    assert left.status == ItemStatus.READY


def test_a_standard_member_may_not_reconnect_and_the_refusal_is_audited(
    use_db: str,
    nomi_app: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member(Role.STANDARD)
    with db_session_for() as s:
        business = s.get(Business, member.business_id)
        assert business is not None
        make_connection(s, business=business, status=ConnectionStatus.EXPIRED)
    before = _counts(db_session_for)

    state = _run(
        reconnect_to_nomi,
        ReconnectParams(business=member.slug, acting_user=member.email, app_block=nomi_app),
    )

    _failed_with(state, member.email, member.slug, "'reconnect'", "only admins and accountants")
    assert _counts(db_session_for) == before
    with db_session_for() as s:
        [refusal] = s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id))
        status = s.exec(select(Connection.status)).one()
    assert (refusal.action, refusal.allowed) == ("reconnect", False)
    assert status == ConnectionStatus.EXPIRED
