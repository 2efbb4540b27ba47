"""change-connection-settings and add-member through the Prefect test server, on SQLite."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import Session, select

from connector.admin.businesses import get_business
from connector.admin.connection_settings import get_settings
from connector.store.models import Membership, TaxRate, User
from flows.ops.add_member import AddMemberParams, add_member
from flows.ops.change_connection_settings import (
    ChangeSettingsParams,
    change_connection_settings,
)
from tests.flows.ops.conftest import OpsBusiness, refusal

pytestmark = pytest.mark.prefect


def settings_artifact(slug: str) -> str:
    """The newest ``connection-settings-<slug>`` artifact's markdown."""
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    found = [a for a in artifact if a.key == f"connection-settings-{slug}"]
    assert found, [a.key for a in artifact]
    return str(found[0].data)


def test_an_admin_turns_auto_publish_on_and_names_the_default_tax_rate_in_words(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    message = change_connection_settings(
        ChangeSettingsParams(
            business=synced_business.slug,
            acting_user=synced_business.admin,
            auto_publish="on",
            warn_new_supplier="off",
            default_tax_costs="Standard 20%",
        )
    )

    assert "updated" in message
    with db_session_for() as s:
        settings = get_settings(s, get_business(s, synced_business.slug))
        standard = s.exec(select(TaxRate).where(TaxRate.code == "STD20")).one()
        assert settings.auto_publish is True
        assert settings.warn_new_supplier is False
        assert settings.use_tax_list is True  # left unchanged
        assert settings.default_tax_costs == standard.nomi_id
    shown = settings_artifact(synced_business.slug)
    assert "| `auto_publish` | off | on **(changed)** |" in shown
    assert "STD20 Standard 20%" in shown


def test_an_unknown_tax_rate_fails_the_run_naming_close_matches_and_changes_nothing(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    state = change_connection_settings(
        ChangeSettingsParams(
            business=synced_business.slug,
            acting_user=synced_business.admin,
            auto_publish="on",
            default_tax_costs="Standard 2O%",
        ),
        return_state=True,
    )

    message = refusal(state)
    assert "default_tax_costs" in message or "Standard 2O%" in message
    assert "close matches" in message
    assert "Standard 20%" in message
    with db_session_for() as s:
        assert get_settings(s, get_business(s, synced_business.slug)).auto_publish is False


def test_a_standard_member_may_not_change_settings(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    state = change_connection_settings(
        ChangeSettingsParams(
            business=ops_business.slug, acting_user=ops_business.member, auto_publish="on"
        ),
        return_state=True,
    )

    message = refusal(state)
    assert ops_business.member in message
    assert "settings.set" in message
    with db_session_for() as s:
        assert get_settings(s, get_business(s, ops_business.slug)).auto_publish is False


def test_an_admin_adds_a_member_and_a_standard_member_may_not(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    params = {"business": ops_business.slug, "user": ops_business.outsider, "role": "standard"}

    refused = add_member(
        AddMemberParams(**params, acting_user=ops_business.member), return_state=True
    )
    message = refusal(refused)
    assert "members.add" in message
    added = add_member(AddMemberParams(**params, acting_user=ops_business.admin))

    assert added == f"{ops_business.outsider} is standard of {ops_business.slug}"
    with db_session_for() as s:
        user = s.exec(select(User).where(User.email == ops_business.outsider)).one()
        roles = list(s.exec(select(Membership.role).where(Membership.user_id == user.id)))
    assert roles == ["standard"]


def test_an_unknown_business_fails_the_run_naming_close_slugs(ops_business: OpsBusiness) -> None:
    typo = ops_business.slug[:-1] + "x"
    state = add_member(
        AddMemberParams(business=typo, user=ops_business.outsider, acting_user=ops_business.admin),
        return_state=True,
    )
    message = refusal(state)
    assert f"no business '{typo}'" in message
    assert ops_business.slug in message
