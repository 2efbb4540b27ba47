"""Sync and verify tasks through ``.fn()``: retry policy, artifact keys, finding connections."""

from __future__ import annotations

from collections.abc import Callable

from prefect.logging import disable_run_logger
from prefect.states import Completed, Failed
from sqlmodel import Session

from connector.history.keys import artifact_key
from connector.rules.vocabulary import ConnectionStatus
from nomi.errors import ConnectionLostError, RejectedError, ServerError
from tasks.sync import find_connections, retry_transient, sync_one_list
from tests.connector.factories import make_business, make_connection


def _failed(exc: Exception) -> object:
    return Failed(data=exc)


def test_only_transient_failures_are_retried() -> None:
    task, run = sync_one_list, None
    assert retry_transient(task, run, _failed(ServerError("503", status=503))) is True  # type: ignore[arg-type]
    assert retry_transient(task, run, _failed(ConnectionLostError("gone"))) is False  # type: ignore[arg-type]
    assert retry_transient(task, run, _failed(RejectedError("no", status=400))) is False  # type: ignore[arg-type]
    assert retry_transient(task, run, Completed(data=1)) is False  # type: ignore[arg-type]


def test_artifact_keys_are_lowercase_dashes_and_stable() -> None:
    assert artifact_key("sync", "Bright_Smile Ltd") == "sync-bright-smile-ltd"
    assert artifact_key("sync", "business-7") == "sync-business-7"


def test_find_connections_lists_connected_businesses(
    connector_db: str, db_session_for: Callable[[], Session]
) -> None:
    with db_session_for() as s:
        on = make_business(s, slug="zz-on")
        make_connection(s, business=on)
        off = make_business(s, slug="zz-off")
        make_connection(s, business=off, status=ConnectionStatus.REVOKED)
    with disable_run_logger():
        targets = find_connections.fn(connector_db, None, [ConnectionStatus.CONNECTED.value])
    assert [t.slug for t in targets] == ["zz-on"]
