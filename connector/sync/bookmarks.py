"""Sync bookmarks: the per-connection, per-list modified-since cursor of the reference-data sync.

``SyncBookmark`` is the one mutable sync pointer; `set_bookmark` moves it only after the synced
rows are committed, `get_bookmark` reads it at the start of the next incremental sync.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from connector.store.base import table_of, utcnow
from connector.store.models import SyncBookmark
from connector.sync.writer import insert_for


def get_bookmark(session: Session, *, connection_id: uuid.UUID, list_name: str) -> datetime | None:
    """The bookmark (Nomi ``server_time``) of the last committed sync of a list, if any.

    A Core read of one column: a sync flow run in a fresh worker process would otherwise pay for
    compiling its first ORM query here (about 80 ms, a third of a small incremental sync).
    """
    table = table_of(SyncBookmark)
    found: datetime | None = session.connection().scalar(
        sa.select(table.c.bookmark).where(
            table.c.connection_id == connection_id, table.c.list_name == list_name
        )
    )
    return found


def set_bookmark(
    session: Session, *, connection_id: uuid.UUID, list_name: str, bookmark: datetime
) -> None:
    """Move the bookmark of a list (call after the synced rows are committed).

    One ``INSERT .. ON CONFLICT DO UPDATE``, so concurrent syncs of one list cannot collide on
    the (connection, list) key the way a read-then-insert would.
    """
    table = table_of(SyncBookmark)
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.connection_id, table.c.list_name],
        set_={"bookmark": stmt.excluded.bookmark, "updated_at": stmt.excluded.updated_at},
    )
    session.connection().execute(
        stmt,
        {
            "id": uuid.uuid4(),
            "connection_id": connection_id,
            "list_name": list_name,
            "bookmark": bookmark,
            "updated_at": utcnow(),
        },
    )
