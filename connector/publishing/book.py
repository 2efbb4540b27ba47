"""What the items of one publish batch share: contacts created so far, Nomi's users, history."""

from __future__ import annotations

import threading
import uuid

from sqlmodel import Session, col, select

from connector.publishing import outbox
from connector.publishing.payloads import generation_step
from connector.rules.names import normalise_name
from connector.rules.vocabulary import record_step
from connector.store.history_tables import PublishAttempt
from connector.store.models import Connection, Item, Organisation
from nomi.client import NomiClient


class PublishBook:
    """What the items of one batch share: new contacts created so far and Nomi's users.

    Thread-safe: two items of the same new supplier wait for each other and make one contact.
    """

    def __init__(self, connection_id: uuid.UUID) -> None:
        self.connection_id = connection_id
        self._lock = threading.Lock()
        self._contact_locks: dict[tuple[str, str], threading.Lock] = {}
        self._contacts: dict[tuple[str, str], str] = {}
        self._users: dict[str, str] | None = None
        self._base_currency: tuple[str | None] | None = None  # read once (a 1-tuple: None known)
        self.tried: set[uuid.UUID] | None = None

    def load_history(self, session: Session, items: list[Item]) -> None:
        """Note which claimed items have an attempt under their record key (one query).

        ``publish_item`` then knows without a query per item whether to look the record up by
        ``source_id`` before creating it. Call it after the items were claimed.
        """
        keys = {
            outbox.idempotency_key(
                i.id,
                i.publish_generation,
                generation_step(record_step(i.kind, i.document_type), i.record_generation or 0),
            ): i.id
            for i in items
        }
        found = session.exec(
            select(PublishAttempt.item_id, PublishAttempt.idempotency_key).where(
                col(PublishAttempt.item_id).in_(list(keys.values())),
                col(PublishAttempt.idempotency_key).in_(list(keys)),
            )
        ).all()
        session.commit()
        self.tried = {item_id for item_id, key in found if keys.get(key or "") == item_id}

    @classmethod
    def for_business(cls, session: Session, business_id: uuid.UUID) -> PublishBook:
        """A book for the business's connection."""
        connection_id = session.exec(
            select(Connection.id).where(Connection.business_id == business_id)
        ).one()
        return cls(connection_id)

    def contact_lock(self, kind: str, name: str) -> threading.Lock:
        """The lock serialising the creation of one contact."""
        with self._lock:
            return self._contact_locks.setdefault((kind, normalise_name(name)), threading.Lock())

    def known_contact(self, kind: str, name: str) -> str | None:
        """The Nomi id of a contact created (or found) earlier in this batch."""
        return self._contacts.get((kind, normalise_name(name)))

    def remember_contact(self, kind: str, name: str, nomi_id: str) -> None:
        """Remember a contact for the rest of the batch."""
        self._contacts[(kind, normalise_name(name))] = nomi_id

    def user_id(self, nomi: NomiClient, email: str) -> str | None:
        """The Nomi user id of ``email`` (``GET /users`` once per batch)."""
        with self._lock:
            if self._users is None:
                self._users = {u.email.strip().lower(): u.id for u in nomi.list_users() if u.email}
            return self._users.get(email.strip().lower())

    def base_currency(self, session: Session) -> str | None:
        """The organisation's base currency as the sync mirrored it (one query per batch).

        None until the organisation was mirrored (``connector.sync.organisation``).
        """
        with self._lock:
            if self._base_currency is None:
                found = session.exec(
                    select(Organisation.base_currency).where(
                        Organisation.connection_id == self.connection_id
                    )
                ).first()
                self._base_currency = (found,)
            return self._base_currency[0]
