"""Connect rules (connector.connections.consent): who may, which organisation, and the rows left
behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connector.access import PermissionDeniedError
from connector.connections.consent import (
    ConnectRefusedError,
    OrganisationChangedError,
    authorise_consent,
    check_organisation,
    pick_organisation,
    record_connection,
)
from connector.connections.oauth_states import OAuthPurpose
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Business, ConnectionSettings
from nomi.models import Organisation
from tests.connector.factories import make_business, make_connection, make_membership, make_user

ACME = Organisation(tenant_id="t-acme", tenant_name="Acme Ltd")
OTHER = Organisation(tenant_id="t-other", tenant_name="Other Ltd")


def _member(db: Session, role: str = Role.ADMIN) -> tuple[str, str]:
    business = make_business(db)
    user = make_user(db)
    make_membership(db, user=user, business=business, role=role)
    db.commit()
    return business.slug, user.email


def _audit(engine: Engine) -> list[tuple[str, bool]]:
    with Session(engine) as s:
        return [(a.action, a.allowed) for a in s.exec(select(AuditLog).order_by(col(AuditLog.at)))]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ACCOUNTANT])
def test_admins_and_accountants_may_connect_an_unconnected_business(
    db: Session, engine: Engine, role: str
) -> None:
    slug, email = _member(db, role)
    request = authorise_consent(
        db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.CONNECT
    )
    db.commit()
    assert request.business_slug == slug
    assert request.tenant_id is None
    assert _audit(engine) == [("connect", True)]


def test_a_standard_member_is_refused_and_the_refusal_is_kept(db: Session, engine: Engine) -> None:
    slug, email = _member(db, Role.STANDARD)
    with pytest.raises(PermissionDeniedError, match=f"{email}.*'connect'.*{slug}"):
        authorise_consent(db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.CONNECT)
    db.rollback()
    assert _audit(engine) == [("connect", False)]


def test_an_unknown_user_is_refused_by_email_and_audited(db: Session, engine: Engine) -> None:
    slug, _ = _member(db)
    with pytest.raises(PermissionDeniedError, match=r"nobody@example\.com"):
        authorise_consent(
            db, business_slug=slug, acting_email="nobody@example.com", purpose=OAuthPurpose.CONNECT
        )
    db.rollback()
    assert _audit(engine) == [("connect", False)]


def test_an_unknown_business_is_named(db: Session) -> None:
    with pytest.raises(LookupError, match="ghost"):
        authorise_consent(
            db, business_slug="ghost", acting_email="a@b.c", purpose=OAuthPurpose.CONNECT
        )


def test_connecting_a_connected_business_points_to_reconnect(db: Session, engine: Engine) -> None:
    slug, email = _member(db)
    make_connection(db, business=db.exec(select(Business).where(Business.slug == slug)).one())
    db.commit()
    with pytest.raises(ConnectRefusedError, match="reconnect-to-nomi"):
        authorise_consent(db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.CONNECT)
    db.commit()  # the flow's task commits the audit rows before refusing
    assert _audit(engine) == [("connect", True), ("connect.refused", False)]


def test_reconnecting_a_business_never_connected_points_to_connect(db: Session) -> None:
    slug, email = _member(db)
    with pytest.raises(ConnectRefusedError, match="connect-to-nomi first"):
        authorise_consent(
            db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.RECONNECT
        )


def test_the_current_organisation_wins_among_several_grants() -> None:
    assert pick_organisation([ACME, OTHER], current_tenant_id="t-acme") == ACME
    assert pick_organisation([ACME, OTHER]) == OTHER
    assert pick_organisation([ACME]) == ACME
    with pytest.raises(ConnectRefusedError, match="no organisation"):
        pick_organisation([])


def test_another_organisation_is_refused_unless_allowed(db: Session) -> None:
    slug, email = _member(db)
    row = db.exec(select(Business).where(Business.slug == slug)).one()
    make_connection(db, business=row, nomi_tenant_id="t-acme", organisation_name="Acme Ltd")
    db.commit()
    request = authorise_consent(
        db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.RECONNECT
    )
    check_organisation(request, ACME, allow_change=False)
    check_organisation(request, OTHER, allow_change=True)
    with pytest.raises(OrganisationChangedError, match=r"'Acme Ltd'.*'Other Ltd'"):
        check_organisation(request, OTHER, allow_change=False)


def test_recording_a_reconnect_keeps_the_settings_and_renews_the_consent(db: Session) -> None:
    slug, email = _member(db)
    row = db.exec(select(Business).where(Business.slug == slug)).one()
    old = make_connection(
        db, business=row, nomi_tenant_id="t-acme", status=ConnectionStatus.EXPIRED
    )
    settings = db.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == old.id)
    ).one()
    settings.auto_publish = True
    db.commit()
    request = authorise_consent(
        db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.RECONNECT
    )
    now = datetime(2026, 5, 1, tzinfo=UTC)
    connection = record_connection(
        db,
        request=request,
        purpose=OAuthPurpose.RECONNECT,
        organisation=ACME,
        scopes=["offline_access"],
        credentials_block_name="nomi-credentials-x",
        now=now,
    )
    db.commit()
    assert connection.id == old.id
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.consent_expires_at == now + timedelta(days=365)
    assert connection.credentials_block_name == "nomi-credentials-x"
    kept = db.exec(select(ConnectionSettings)).all()
    assert [s.auto_publish for s in kept] == [True]


def test_recording_a_first_connect_creates_the_connection_and_default_settings(
    db: Session, engine: Engine
) -> None:
    slug, email = _member(db)
    request = authorise_consent(
        db, business_slug=slug, acting_email=email, purpose=OAuthPurpose.CONNECT
    )
    connection = record_connection(
        db,
        request=request,
        purpose=OAuthPurpose.CONNECT,
        organisation=OTHER,
        scopes=["offline_access", "contacts.read"],
        credentials_block_name="nomi-credentials-y",
    )
    db.commit()
    assert connection.nomi_tenant_id == "t-other"
    assert connection.organisation_name == "Other Ltd"
    assert connection.scopes == ["offline_access", "contacts.read"]
    settings = db.exec(select(ConnectionSettings)).one()
    assert settings.connection_id == connection.id
    assert settings.warn_new_supplier is True
    assert _audit(engine) == [("connect", True), ("connect.completed", True)]
