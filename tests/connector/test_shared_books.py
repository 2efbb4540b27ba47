"""One Nomi organisation, one business (connector.connections.consent): who holds an organisation,
the
refusal, and the shared-books exception, on SQLite and PostgreSQL (issue 16, finding 1)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connector.connections.consent import (
    ConsentRequest,
    OrganisationTakenError,
    authorise_consent,
    check_books,
    holders_of,
    record_connection,
)
from connector.connections.oauth_states import OAuthPurpose
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.db import session as db_session
from connector.store.history_tables import AuditLog
from connector.store.models import Business, Connection
from nomi.models import Organisation
from tests.connector.factories import make_business, make_connection, make_membership, make_user

BOOKS = Organisation(tenant_id="t-books", tenant_name="Bright Smile Dental Ltd")


def _holder(db: Session, slug: str, status: str = ConnectionStatus.CONNECTED) -> Business:
    business = make_business(db, slug=slug)
    make_connection(
        db,
        business=business,
        nomi_tenant_id=BOOKS.tenant_id,
        organisation_name=BOOKS.tenant_name,
        status=status,
    )
    return business


def _newcomer(db: Session) -> ConsentRequest:
    business = make_business(db, slug="harbour-coffee")
    admin = make_user(db)
    make_membership(db, user=admin, business=business, role=Role.ADMIN)
    db.commit()
    request = authorise_consent(
        db, business_slug=business.slug, acting_email=admin.email, purpose=OAuthPurpose.CONNECT
    )
    db.commit()
    return request


def _audit(engine: Engine, request: ConsentRequest) -> list[AuditLog]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(AuditLog)
                .where(AuditLog.business_id == request.business_id)
                .order_by(col(AuditLog.at))
            )
        )


@pytest.mark.parametrize(
    ("status", "holds"),
    [
        (ConnectionStatus.CONNECTED, True),
        (ConnectionStatus.EXPIRED, True),
        (ConnectionStatus.REVOKED, True),
        (ConnectionStatus.PENDING, True),
        (ConnectionStatus.DISCONNECTED, False),
    ],
)
def test_a_business_holds_an_organisation_until_it_is_disconnected(
    db: Session, status: str, holds: bool
) -> None:
    holder = _holder(db, "bright-smile", status)
    db.commit()
    other = make_business(db)
    db.commit()
    assert holders_of(db, BOOKS.tenant_id, besides=other.id) == (["bright-smile"] if holds else [])
    assert holders_of(db, BOOKS.tenant_id, besides=holder.id) == []  # never itself


def test_a_taken_organisation_is_refused_naming_every_holder_and_audited(
    db: Session, engine: Engine
) -> None:
    _holder(db, "bright-smile")
    _holder(db, "bright-smile-2", ConnectionStatus.EXPIRED)
    request = _newcomer(db)
    with pytest.raises(OrganisationTakenError) as refused:
        check_books(
            db,
            request=request,
            purpose=OAuthPurpose.CONNECT,
            organisation=BOOKS,
            shared_books=False,
        )
    db.commit()  # as the task does: keep the refusal's row
    message = str(refused.value)
    assert "'bright-smile', 'bright-smile-2'" in message
    assert "harbour-coffee" in message
    assert "shared_books=true" in message
    [_, row] = _audit(engine, request)
    assert (row.action, row.allowed) == ("connect.refused", False)
    assert row.detail["held_by"] == ["bright-smile", "bright-smile-2"]


def test_shared_books_lets_it_through_and_says_so_in_the_audit(db: Session, engine: Engine) -> None:
    _holder(db, "bright-smile")
    request = _newcomer(db)
    shared = check_books(
        db, request=request, purpose=OAuthPurpose.CONNECT, organisation=BOOKS, shared_books=True
    )
    record_connection(
        db,
        request=request,
        purpose=OAuthPurpose.CONNECT,
        organisation=BOOKS,
        scopes=["offline_access"],
        credentials_block_name="nomi-credentials-harbour-coffee",
        shared_books=True,
    )
    db.commit()
    assert shared == ["bright-smile"]
    rows = {a.action: a for a in _audit(engine, request)}
    assert rows["connect.shared_books"].allowed is True
    assert rows["connect.shared_books"].detail["held_by"] == ["bright-smile"]
    assert rows["connect.completed"].detail["shares_with"] == ["bright-smile"]


def test_an_organisation_free_to_take_is_not_audited_as_shared(db: Session, engine: Engine) -> None:
    request = _newcomer(db)
    assert (
        check_books(
            db, request=request, purpose=OAuthPurpose.CONNECT, organisation=BOOKS, shared_books=True
        )
        == []
    )
    db.commit()
    assert [a.action for a in _audit(engine, request)] == ["connect"]


def test_recording_refuses_an_organisation_taken_since_the_check_and_writes_only_the_refusal(
    db: Session, engine: Engine
) -> None:
    request = _newcomer(db)  # checked while the organisation was free...
    _holder(db, "bright-smile")  # ...then another run connected a business to it
    db.commit()
    with pytest.raises(OrganisationTakenError, match="bright-smile"):
        record_connection(
            db,
            request=request,
            purpose=OAuthPurpose.CONNECT,
            organisation=BOOKS,
            scopes=["offline_access"],
            credentials_block_name="nomi-credentials-harbour-coffee",
        )
    db.commit()
    assert (
        db.exec(select(Connection).where(Connection.business_id == request.business_id)).first()
        is None
    )
    assert [a.action for a in _audit(engine, request)] == ["connect", "connect.refused"]


def test_two_businesses_recording_one_organisation_at_once_cannot_both_win(engine: Engine) -> None:
    """A write transaction (SQLite) or the organisation's advisory lock (PostgreSQL) orders them."""
    with Session(engine, expire_on_commit=False) as db:
        first = _newcomer(db)
        other = make_business(db, slug="northwind")
        admin = make_user(db)
        make_membership(db, user=admin, business=other, role=Role.ADMIN)
        db.commit()
        second = authorise_consent(
            db, business_slug="northwind", acting_email=admin.email, purpose=OAuthPurpose.CONNECT
        )
        db.commit()
    recorded = threading.Event()
    outcome: dict[str, BaseException | None] = {}

    def record(request: ConsentRequest, *, hold: bool) -> None:
        try:
            with db_session(engine, write=True) as s:
                record_connection(
                    s,
                    request=request,
                    purpose=OAuthPurpose.CONNECT,
                    organisation=BOOKS,
                    scopes=["offline_access"],
                    credentials_block_name=f"nomi-credentials-{request.business_slug}",
                )
                if hold:  # the first has recorded, not committed yet
                    recorded.set()
                    time.sleep(0.5)
            outcome[request.business_slug] = None
        except BaseException as exc:
            outcome[request.business_slug] = exc

    winner = threading.Thread(target=record, args=(first,), kwargs={"hold": True})
    winner.start()
    assert recorded.wait(10)
    record(second, hold=False)
    winner.join(10)

    assert outcome[first.business_slug] is None
    assert isinstance(outcome[second.business_slug], OrganisationTakenError)
    with Session(engine) as s:
        holders = s.exec(
            select(Connection.business_id).where(Connection.nomi_tenant_id == BOOKS.tenant_id)
        ).all()
    assert holders == [first.business_id]
