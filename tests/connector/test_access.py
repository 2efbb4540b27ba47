"""Only admins and accountants of a business may change it; every decision is audited."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.access import PermissionDeniedError, require_admin
from connector.rules.vocabulary import Role
from connector.store.history_tables import AuditLog
from tests.connector.factories import make_business, make_membership, make_user


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ACCOUNTANT])
def test_admins_and_accountants_are_allowed_and_audited(db: Session, role: Role) -> None:
    business, user = make_business(db), make_user(db)
    make_membership(db, user=user, business=business, role=role)
    db.commit()

    membership = require_admin(db, business_id=business.id, user_id=user.id, action="connect")
    db.commit()

    assert membership.role == role
    rows = db.exec(select(AuditLog)).all()
    assert [(r.action, r.allowed, r.actor_user_id, r.business_id) for r in rows] == [
        ("connect", True, user.id, business.id)
    ]


def test_a_standard_member_is_refused_with_a_clear_message_and_the_refusal_survives_rollback(
    engine: Engine,
) -> None:
    with Session(engine, expire_on_commit=False) as db:
        business = make_business(db, slug="bright-smile")
        user = make_user(db, email="clerk@bright.example")
        make_membership(db, user=user, business=business, role=Role.STANDARD)
        db.commit()
        user_id = user.id
        with pytest.raises(PermissionDeniedError) as refused:
            require_admin(db, business_id=business.id, user_id=user.id, action="settings.set")
        db.rollback()

    message = str(refused.value)
    assert "clerk@bright.example" in message
    assert "bright-smile" in message
    assert "settings.set" in message
    assert "standard" in message
    with Session(engine) as fresh:
        rows = fresh.exec(select(AuditLog)).all()
    assert len(rows) == 1
    assert rows[0].allowed is False
    assert rows[0].action == "settings.set"
    assert rows[0].actor_user_id == user_id
    assert "clerk@bright.example" in rows[0].detail["reason"]


def test_a_non_member_or_unknown_user_is_refused(db: Session) -> None:
    business, other_business, outsider = make_business(db), make_business(db), make_user(db)
    make_membership(db, user=outsider, business=other_business, role=Role.ADMIN)
    db.commit()

    with pytest.raises(PermissionDeniedError, match="not a member"):
        require_admin(db, business_id=business.id, user_id=outsider.id, action="disconnect")
    ghost = uuid.uuid4()
    with pytest.raises(PermissionDeniedError, match=f"unknown user {ghost}"):
        require_admin(db, business_id=business.id, user_id=ghost, action="reconnect")

    db.rollback()  # what a caller does after a refusal; also ends SQLite's old read snapshot
    refused = db.exec(select(AuditLog).where(AuditLog.allowed == False)).all()  # noqa: E712
    assert {r.action for r in refused} == {"disconnect", "reconnect"}
