"""One normalisation of acting users (trim, case-fold) for every entry point; every refusal,
an unknown user's included, is audited (issue 16, finding 5)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connector.access import (
    PermissionDeniedError,
    find_user,
    normalise_email,
    require_actor,
    require_admin_actor,
)
from connector.admin.users import add_user, get_user
from connector.connections.consent import authorise_consent
from connector.connections.oauth_states import OAuthPurpose
from connector.items.choices import require_member
from connector.rules.vocabulary import Role
from connector.store.history_tables import AuditLog
from connector.store.models import Business, User
from tests.connector.factories import make_business, make_connection, make_membership, make_user

ADMIN = "admin@acme.example"
AS_TYPED = ["ADMIN@acme.example", " admin@acme.example", "\tAdmin@ACME.example  "]


def _acme(db: Session, *, connected: bool = False) -> Business:
    business = make_business(db, slug="acme")
    admin = add_user(db, email=ADMIN, name="Admin")
    make_membership(db, user=admin, business=business, role=Role.ADMIN)
    if connected:
        make_connection(db, business=business)
    db.commit()
    return business


def _refusals(engine: Engine) -> list[AuditLog]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(AuditLog).where(AuditLog.allowed == False).order_by(col(AuditLog.at))  # noqa: E712
            )
        )


def test_an_email_is_trimmed_and_case_folded() -> None:
    assert normalise_email("  ADMIN@Acme.Example\n") == ADMIN
    assert normalise_email("STRASSE@acme.example") == normalise_email("Straße@acme.example")


@pytest.mark.parametrize("typed", AS_TYPED)
@pytest.mark.parametrize("purpose", [OAuthPurpose.CONNECT, OAuthPurpose.RECONNECT])
def test_connect_and_reconnect_accept_the_admin_however_the_email_is_typed(
    db: Session, engine: Engine, typed: str, purpose: OAuthPurpose
) -> None:
    business = _acme(db, connected=purpose == OAuthPurpose.RECONNECT)
    request = authorise_consent(db, business_slug="acme", acting_email=typed, purpose=purpose)
    db.commit()
    admin = db.exec(select(User).where(User.email == ADMIN)).one()
    assert request.user_id == admin.id
    with Session(engine) as s:
        [allowed] = s.exec(select(AuditLog).where(AuditLog.business_id == business.id)).all()
    assert (allowed.action, allowed.allowed, allowed.actor_user_id) == (purpose, True, admin.id)
    assert allowed.detail["email"] == typed


@pytest.mark.parametrize("purpose", [OAuthPurpose.CONNECT, OAuthPurpose.RECONNECT])
def test_an_unknown_actor_is_refused_and_the_refusal_names_them_as_given(
    db: Session, engine: Engine, purpose: OAuthPurpose
) -> None:
    business = _acme(db, connected=purpose == OAuthPurpose.RECONNECT)
    with pytest.raises(PermissionDeniedError, match="no such user") as refused:
        authorise_consent(
            db, business_slug="acme", acting_email=" Nobody@Acme.example", purpose=purpose
        )
    db.rollback()
    assert "' Nobody@Acme.example'" in str(refused.value)  # the stray space is visible
    [row] = _refusals(engine)
    assert (row.action, row.business_id, row.actor_user_id) == (purpose, business.id, None)
    assert row.detail["email"] == " Nobody@Acme.example"
    assert "no such user" in row.detail["reason"]


def test_users_stored_before_the_normalisation_are_still_found(db: Session) -> None:
    # lower() kept the sharp s; a row written by hand kept its capitals and a space.
    legacy = make_user(db, email="straße@acme.example")
    by_hand = make_user(db, email=" Books@Ledger.example")
    db.commit()
    assert find_user(db, "STRASSE@acme.example") == legacy
    assert find_user(db, "books@ledger.example") == by_hand
    assert get_user(db, "Straße@ACME.example") == legacy
    with pytest.raises(ValueError, match="already exists"):
        add_user(db, email="strasse@acme.example", name="Twin")


def test_a_new_user_is_stored_normalised(db: Session) -> None:
    user = add_user(db, email="  Straße@ACME.example ", name="Anna")
    assert user.email == "strasse@acme.example"


def test_two_old_rows_that_normalise_alike_are_refused_not_guessed(
    db: Session, engine: Engine
) -> None:
    business = make_business(db)
    make_user(db, email="Admin@acme.example")
    make_user(db, email="ADMIN@acme.example")
    db.commit()
    assert find_user(db, ADMIN) is None
    with pytest.raises(PermissionDeniedError, match="several users"):
        require_actor(db, email=ADMIN, business_id=business.id, action="settings.set")
    assert [r.action for r in _refusals(engine)] == ["settings.set"]


def test_a_known_non_admin_is_refused_with_the_email_as_given_in_the_audit(
    db: Session, engine: Engine
) -> None:
    business = make_business(db)
    clerk = make_user(db, email="clerk@acme.example")
    make_membership(db, user=clerk, business=business, role=Role.STANDARD)
    db.commit()
    with pytest.raises(PermissionDeniedError, match="standard"):
        require_admin_actor(
            db, email="CLERK@acme.example ", business_id=business.id, action="disconnect"
        )
    [row] = _refusals(engine)
    assert row.actor_user_id == clerk.id
    assert row.detail["email"] == "CLERK@acme.example "


def test_publish_items_and_item_edits_match_the_member_the_same_way(
    db: Session, engine: Engine
) -> None:
    business = make_business(db)
    member = add_user(db, email="Straße@acme.example", name="Anna")
    make_membership(db, user=member, business=business, role=Role.STANDARD)
    db.commit()
    found = require_member(
        db, business_id=business.id, email=" STRASSE@acme.example", action="publish.items"
    )
    assert found.id == member.id
    with pytest.raises(PermissionDeniedError, match="no such user"):
        require_member(
            db, business_id=business.id, email="ghost@acme.example", action="publish.items"
        )
    [row] = _refusals(engine)
    assert (row.action, row.detail["email"]) == ("publish.items", "ghost@acme.example")


def test_an_absurd_email_is_cut_in_the_audit_and_the_message(db: Session, engine: Engine) -> None:
    business = make_business(db)
    db.commit()
    given = "x" * 5000 + "\n## injected"
    with pytest.raises(PermissionDeniedError) as refused:
        require_actor(db, email=given, business_id=business.id, action="connect")
    assert len(str(refused.value)) < 600
    assert "\n" not in str(refused.value)
    [row] = _refusals(engine)
    assert len(row.detail["email"]) == 320
