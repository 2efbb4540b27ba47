"""Edits on the item itself: category and tax rate, by members, on review/ready items, audited.

Also the other fixes a user makes for a held or rejected item: changing the rule it publishes by,
or the bank account its payment method is linked to.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.admin.businesses import connection_of
from connector.admin.contact_rules import add_rule, remove_rule
from connector.admin.lookup import ArchivedEntryError, UnknownNameError
from connector.admin.members import add_member
from connector.admin.payment_methods import (
    link_payment_method,
    list_payment_methods,
    remove_payment_method,
)
from connector.items.assess import reassess
from connector.items.choices import reassess_after_change
from connector.items.edits import EditResult, edit_item
from connector.items.lookup import UnknownItemsError
from connector.rules.vocabulary import ItemStatus, Role
from connector.store.db import session as db_session
from connector.store.history_tables import AuditLog
from connector.store.models import Business, ConnectionSettings, Item, Membership
from tests.connector.factories import (
    make_bank_account,
    make_business,
    make_category,
    make_connection,
    make_item,
    make_membership,
    make_payment_method,
    make_supplier,
    make_tax_rate,
    make_user,
)


@dataclass
class Shop:
    business: Business
    member: str
    category: str
    archived_category: str
    tax_rate: str


@pytest.fixture
def shop(engine: Engine) -> Shop:
    """A connected business, a standard member, its lists mirrored."""
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        member = make_user(s)
        make_membership(s, user=member, business=business, role=Role.STANDARD)
        connection = make_connection(s, business=business)
        make_supplier(s, connection=connection, name="Office Supplies Ltd")
        category = make_category(s, connection=connection)
        archived = make_category(s, connection=connection, status="ARCHIVED")
        rate = make_tax_rate(s, connection=connection)
        s.commit()
        return Shop(business, member.email, category.nomi_id, archived.nomi_id, rate.nomi_id)


def _item(engine: Engine, shop: Shop, **fields: object) -> str:
    """An item of the shop, assessed; returns its external id."""
    with Session(engine, expire_on_commit=False) as s:
        item = make_item(s, business=shop.business, status=ItemStatus.REVIEW, **fields)
        s.commit()
        reassess(s, business_id=shop.business.id, item_ids=[item.id])
        s.commit()
        return item.external_id


def _edit(engine: Engine, shop: Shop, external_id: str, **changes: str) -> EditResult:
    with db_session(engine, write=True) as s:
        return edit_item(
            s,
            business=shop.business,
            external_id=external_id,
            actor_email=shop.member,
            changes=changes,
        )


def _stored(engine: Engine, external_id: str) -> Item:
    with Session(engine) as s:
        item = s.exec(select(Item).where(Item.external_id == external_id)).one()
        s.expunge(item)
        return item


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action)).all())


def test_a_category_set_on_the_item_makes_it_ready_and_is_audited(
    engine: Engine, shop: Shop
) -> None:
    external_id = _item(engine, shop)
    before = _stored(engine, external_id)
    assert before.status == ItemStatus.REVIEW
    assert any("no category" in reason for reason in before.review_reasons)

    result = _edit(engine, shop, external_id, category=shop.category)

    assert result.status == ItemStatus.READY
    assert result.category_id == shop.category
    stored = _stored(engine, external_id)
    assert stored.category_edit == shop.category
    assert stored.resolved_sources.get("category") == "item"
    audit = _audit(engine, "item.edit")
    assert [(a.allowed, a.detail["category_edit"]) for a in audit] == [(True, shop.category)]


def test_an_archived_category_is_refused_naming_it_and_nothing_changes(
    engine: Engine, shop: Shop
) -> None:
    """Nomi would refuse it; the item would only wait in review with "category archived"."""
    external_id = _item(engine, shop)

    with pytest.raises(ArchivedEntryError, match="is archived in Nomi: choose an active one"):
        _edit(engine, shop, external_id, category=shop.archived_category)
    assert _stored(engine, external_id).category_edit is None
    assert _audit(engine, "item.edit") == []


@pytest.mark.parametrize("text", ["453", "Office Expenses", " office  EXPENSES ", "cat-office"])
def test_a_category_is_set_by_its_code_its_name_or_its_id(
    engine: Engine, shop: Shop, text: str
) -> None:
    """Issue 19: `--category 453` (the code of "Office Expenses") exited 0, then said it did not
    exist; `--category "Office Expenses"` was refused."""
    with Session(engine) as s:
        connection = connection_of(s, shop.business)
        make_category(s, connection=connection, nomi_id="cat-office", code="453",
                      name="Office Expenses")  # fmt: skip
        s.commit()
    external_id = _item(engine, shop)

    result = _edit(engine, shop, external_id, category=text)

    assert result.status == ItemStatus.READY
    assert (result.category_id, result.category) == ("cat-office", "453 Office Expenses")
    assert _stored(engine, external_id).category_edit == "cat-office"
    [audit] = _audit(engine, "item.edit")
    assert audit.detail["category_edit"] == "cat-office"


def test_a_tax_rate_is_set_by_its_code_and_an_item_found_in_another_case(
    engine: Engine, shop: Shop
) -> None:
    with Session(engine) as s:
        connection = connection_of(s, shop.business)
        make_tax_rate(s, connection=connection, nomi_id="tax-red5", code="RED5", name="Reduced 5%",
                      rate=Decimal("5"))  # fmt: skip
        s.commit()
    external_id = _item(engine, shop, category_edit=shop.category)

    result = _edit(engine, shop, external_id.upper(), tax_rate="red5")

    assert result.external_id == external_id
    assert (result.tax_rate_id, result.tax_rate) == ("tax-red5", "RED5 Reduced 5%")


def test_an_unknown_category_is_refused_with_close_matches_and_nothing_changes(
    engine: Engine, shop: Shop
) -> None:
    with Session(engine) as s:
        connection = connection_of(s, shop.business)
        make_category(s, connection=connection, code="453", name="Office Expenses")
        s.commit()
    external_id = _item(engine, shop)

    with pytest.raises(UnknownNameError) as refused:
        _edit(engine, shop, external_id, category="Ofice expenses")

    assert "no category 'Ofice expenses'" in str(refused.value)
    assert "'Office Expenses' (code 453)" in refused.value.suggestions
    assert refused.value.subject == "category"
    assert _stored(engine, external_id).category_edit is None
    assert _audit(engine, "item.edit") == []


def test_none_clears_the_edit_and_the_rules_decide_again(engine: Engine, shop: Shop) -> None:
    external_id = _item(engine, shop, category_edit=shop.category)
    assert _stored(engine, external_id).status == ItemStatus.READY

    result = _edit(engine, shop, external_id, category="none")

    assert result.status == ItemStatus.REVIEW
    assert _stored(engine, external_id).category_edit is None


def test_editing_a_rejected_item_lets_auto_publish_take_it_again(
    engine: Engine, shop: Shop
) -> None:
    rejected = _item(
        engine,
        shop,
        category_edit=shop.category,
        last_error_code="period_locked",
        last_error_message="The period is locked",
    )
    waiting = _item(engine, shop, category_edit=shop.category, last_error_code="connection_expired")

    assert _edit(engine, shop, rejected, tax_rate=shop.tax_rate).rejection_cleared
    assert not _edit(engine, shop, waiting, tax_rate=shop.tax_rate).rejection_cleared

    assert _stored(engine, rejected).last_error_code is None
    assert _stored(engine, rejected).resolved_tax_rate_nomi_id == shop.tax_rate
    # A reconnect run looks for items that waited: an edit must not hide them.
    assert _stored(engine, waiting).last_error_code == "connection_expired"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "nothing to change"),
        ({"colour": "blue"}, "unknown item field 'colour'"),
        ({"category": "=HYPERLINK(1)"}, "no category '=HYPERLINK"),
        ({"tax_rate": "x" * 80}, "no tax rate 'xxx"),
    ],
)
def test_bad_edits_are_refused_by_name_and_nothing_changes(
    engine: Engine, shop: Shop, changes: dict[str, str], message: str
) -> None:
    external_id = _item(engine, shop)
    with pytest.raises(ValueError, match=message):
        _edit(engine, shop, external_id, **changes)
    assert _stored(engine, external_id).category_edit is None
    assert _audit(engine, "item.edit") == []


def test_a_tax_rate_needs_use_tax_list_on(engine: Engine, shop: Shop) -> None:
    external_id = _item(engine, shop)
    with Session(engine) as s:
        settings = s.exec(select(ConnectionSettings)).one()
        settings.use_tax_list = False
        s.add(settings)
        s.commit()

    with pytest.raises(ValueError, match=r"only while the business's use_tax_list setting is on"):
        _edit(engine, shop, external_id, tax_rate=shop.tax_rate)
    assert _stored(engine, external_id).tax_rate_edit is None


@pytest.mark.parametrize("status", [ItemStatus.PUBLISHING, ItemStatus.PUBLISHED])
def test_only_items_in_review_or_ready_can_be_edited(
    engine: Engine, shop: Shop, status: ItemStatus
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        item = make_item(s, business=shop.business, status=status)
        s.commit()

    with pytest.raises(ValueError, match=f"is {status.value}: only items in review or ready"):
        _edit(engine, shop, item.external_id, category=shop.category)
    assert _stored(engine, item.external_id).category_edit is None


def test_an_unknown_item_is_named_with_the_close_ones(engine: Engine, shop: Shop) -> None:
    with pytest.raises(LookupError, match="has no item 'nope'"):
        _edit(engine, shop, "nope", category=shop.category)
    external_id = _item(engine, shop)
    with pytest.raises(UnknownItemsError) as refused:
        _edit(engine, shop, external_id[:-1], category=shop.category)
    assert f"(close matches: '{external_id}')" in str(refused.value)


def test_a_non_member_is_refused_and_the_refusal_audited(engine: Engine, shop: Shop) -> None:
    external_id = _item(engine, shop)
    with Session(engine, expire_on_commit=False) as s:
        outsider = make_user(s)
        s.commit()
    shop.member = outsider.email

    with pytest.raises(PermissionDeniedError, match="not a member"):
        _edit(engine, shop, external_id, category=shop.category)

    assert _stored(engine, external_id).category_edit is None
    assert [a.allowed for a in _audit(engine, "item.edit")] == [False]


def test_a_rule_change_lets_auto_publish_retry_the_rejected_items_it_changes(
    engine: Engine, shop: Shop
) -> None:
    """Nomi rejected an item for its category; the admin points the supplier's rule at another
    one. Items the change moved go again; a rejected item it left as it was keeps its rejection."""
    with Session(engine, expire_on_commit=False) as s:
        admin = make_user(s)
        make_membership(s, user=admin, business=shop.business, role=Role.ADMIN)
        connection = connection_of(s, shop.business)
        new_category = make_category(s, connection=connection).nomi_id
        make_supplier(s, connection=connection, name="Other Ltd")
        add_rule(
            s,
            business=shop.business,
            actor=admin,
            kind="supplier",
            name="Office Supplies Ltd",
            category_nomi_id=shop.category,
        )
        s.commit()
    rejection = {"last_error_code": "category_archived", "last_error_message": "archived"}
    moved = _item(engine, shop, **rejection)
    untouched = _item(
        engine, shop, contact_name="Other Ltd", category_edit=shop.category, **rejection
    )
    assert _stored(engine, moved).resolved_category_nomi_id == shop.category
    assert _stored(engine, untouched).status == ItemStatus.READY

    with db_session(engine, write=True) as s:
        add_rule(
            s,
            business=shop.business,
            actor=admin,
            kind="supplier",
            name="Office Supplies Ltd",
            category_nomi_id=new_category,
        )
        report, retried = reassess_after_change(s, shop.business.id)
        s.commit()

    assert retried == 1
    assert _stored(engine, moved).id in report.changed
    assert _stored(engine, moved).resolved_category_nomi_id == new_category
    assert _stored(engine, moved).last_error_code is None
    assert _stored(engine, untouched).last_error_code == "category_archived"
    assert [a.allowed for a in _audit(engine, "rules.add")] == [True, True]


def test_removing_the_rule_an_item_published_by_sends_it_back_to_review(
    engine: Engine, shop: Shop
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        admin = make_user(s)
        make_membership(s, user=admin, business=shop.business, role=Role.ADMIN)
        add_rule(
            s,
            business=shop.business,
            actor=admin,
            kind="supplier",
            name="office supplies",  # matches "Office Supplies Ltd" once normalised
            category_nomi_id=shop.category,
        )
        s.commit()
    external_id = _item(engine, shop)
    assert _stored(engine, external_id).status == ItemStatus.READY

    with db_session(engine, write=True) as s:
        remove_rule(
            s, business=shop.business, actor=admin, kind="supplier", name="Office Supplies Ltd"
        )
        report, _ = reassess_after_change(s, shop.business.id)
        s.commit()

    stored = _stored(engine, external_id)
    assert stored.status == ItemStatus.REVIEW
    assert any("no category" in reason for reason in stored.review_reasons)
    assert stored.id in report.became_review


def test_relinking_a_payment_method_to_an_active_bank_account_releases_its_held_items(
    engine: Engine, shop: Shop
) -> None:
    """The review reason says "link it to an active bank account": that is what link does."""
    with Session(engine, expire_on_commit=False) as s:
        admin = make_user(s)
        make_membership(s, user=admin, business=shop.business, role=Role.ADMIN)
        connection = connection_of(s, shop.business)
        archived = make_bank_account(s, connection=connection, status="ARCHIVED").nomi_id
        active = make_bank_account(s, connection=connection).nomi_id
        method = make_payment_method(
            s, business=shop.business, name="Company card", bank_account_nomi_id=archived
        )
        s.commit()
    held = _item(engine, shop, category_edit=shop.category, paid=True, payment_method_id=method.id)
    assert _stored(engine, held).status == ItemStatus.REVIEW
    assert any("is archived" in r for r in _stored(engine, held).review_reasons)

    with db_session(engine, write=True) as s:
        link_payment_method(
            s, business=shop.business, actor=admin, name="company CARD", bank_account_nomi_id=active
        )
        report, _ = reassess_after_change(s, shop.business.id)
        s.commit()

    stored = _stored(engine, held)
    assert stored.status == ItemStatus.READY
    assert stored.resolved_bank_account_nomi_id == active
    assert stored.id in report.became_ready
    [audit] = _audit(engine, "payment_methods.link")
    assert audit.allowed
    assert (audit.detail["from"], audit.detail["to"]) == (archived, active)


def test_a_payment_method_in_use_is_not_removed_and_an_unused_one_is(
    engine: Engine, shop: Shop
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        admin = make_user(s)
        make_membership(s, user=admin, business=shop.business, role=Role.ADMIN)
        used = make_payment_method(s, business=shop.business, name="Company card")
        make_payment_method(s, business=shop.business, name="Petty cash")
        s.commit()
    _item(engine, shop, paid=True, payment_method_id=used.id)

    with db_session(engine, write=True) as s, pytest.raises(ValueError) as refused:
        remove_payment_method(s, business=shop.business, actor=admin, name="Company card")
    assert "payment method 'Company card' is used by 1 item(s)" in str(refused.value)

    with db_session(engine, write=True) as s:
        remove_payment_method(s, business=shop.business, actor=admin, name="petty cash")

    with Session(engine) as s:
        names = [m.name for m in list_payment_methods(s, shop.business)]
    assert names == ["Company card"]
    assert [a.detail["name"] for a in _audit(engine, "payment_methods.remove")] == ["Petty cash"]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(engine: Engine) -> None:
    """The last-admin rule holds under concurrency: the second demotion waits, then is refused."""
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        first, second = make_user(s), make_user(s)
        for user in (first, second):
            make_membership(s, user=user, business=business, role=Role.ADMIN)
        s.commit()
    errors: list[BaseException] = []

    def demote_first() -> None:
        try:
            with db_session(engine, write=True) as s:
                add_member(s, business=business, user=first, role="standard", actor=second)
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    other = threading.Thread(target=demote_first)
    with db_session(engine, write=True) as s:
        add_member(s, business=business, user=second, role="standard", actor=first)
        s.flush()
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive()  # waiting for this transaction
    other.join(timeout=30)

    assert not other.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], ValueError | PermissionDeniedError)
    with Session(engine) as s:
        roles = {m.user_id: m.role for m in s.exec(select(Membership))}
    assert roles == {first.id: Role.ADMIN, second.id: Role.STANDARD}
