"""What the items of one publish batch share: contacts created so far and Nomi's users."""

from __future__ import annotations

import threading
import uuid

from sqlmodel import Session, select

from connector.models import Connection
from connector.names import normalise_name
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
