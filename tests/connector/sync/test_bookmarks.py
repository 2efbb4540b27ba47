"""The sync bookmark, the one sync pointer that moves: upserted per (connection, list)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from connector.store.models import SyncBookmark
from connector.sync.bookmarks import get_bookmark, set_bookmark
from tests.connector.factories import make_business, make_connection


def test_the_bookmark_moves_forward_in_place(db: Session) -> None:
    connection = make_connection(db, business=make_business(db))
    first = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert get_bookmark(db, connection_id=connection.id, list_name="suppliers") is None
    set_bookmark(db, connection_id=connection.id, list_name="suppliers", bookmark=first)
    set_bookmark(
        db, connection_id=connection.id, list_name="suppliers", bookmark=first + timedelta(hours=1)
    )
    db.commit()

    assert get_bookmark(
        db, connection_id=connection.id, list_name="suppliers"
    ) == first + timedelta(hours=1)
    assert len(db.exec(select(SyncBookmark)).all()) == 1
