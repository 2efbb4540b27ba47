"""Names, not ids: list entries found by code, name or Nomi id; the refusals name close matches."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlmodel import Session

from connector.admin.businesses import get_business
from connector.admin.lookup import (
    AmbiguousNameError,
    ArchivedEntryError,
    NameLookupError,
    UnknownNameError,
    find_bank_account,
    find_category,
    find_contact,
    find_entry,
    find_tax_rate,
    label,
    label_of,
    list_entries,
    nomi_id_or_none,
)
from connector.errors import UnknownBusinessError
from connector.items.lookup import UnknownItemsError, items_by_external_id
from connector.rules.vocabulary import ListName
from connector.store.models import Business, Connection
from tests.connector.factories import (
    make_bank_account,
    make_business,
    make_category,
    make_connection,
    make_customer,
    make_item,
    make_supplier,
    make_tax_rate,
)


@dataclass
class Mirror:
    business: Business
    connection: Connection


@pytest.fixture
def mirror(db: Session) -> Mirror:
    """A business whose lists look like the sandbox's (codes 453, 489, STD20 ...)."""
    business = make_business(db, slug="bright-smile")
    connection = make_connection(db, business=business)
    for code, name, status in [
        ("453", "Office Expenses", "ACTIVE"),
        ("489", "Telephone & Internet", "ACTIVE"),
        ("469", "Rent", "ACTIVE"),
        ("470", "Rent", "ACTIVE"),
        ("499", "Sundry (old)", "ARCHIVED"),
        ("429", "General Expenses", "ARCHIVED"),
        ("430", "General Expenses", "ACTIVE"),
    ]:
        make_category(db, connection=connection, nomi_id=f"cat-{code}", code=code, name=name,
                      status=status)  # fmt: skip
    for code, name, rate in [("STD20", "Standard 20%", "20"), ("ZERO", "Zero rated 0%", "0")]:
        make_tax_rate(db, connection=connection, nomi_id=f"tax-{code.lower()}", code=code,
                      name=name, rate=Decimal(rate))  # fmt: skip
    make_bank_account(db, connection=connection, nomi_id="bank-cur",
                      name="Business Current Account", masked_number="****4821")  # fmt: skip
    make_bank_account(db, connection=connection, nomi_id="bank-old", name="Old Euro Account",
                      masked_number="****9051", status="ARCHIVED")  # fmt: skip
    make_supplier(db, connection=connection, nomi_id="sup-staples", name="Staples UK")
    make_supplier(db, connection=connection, nomi_id="sup-acme", name="Acme Ltd")
    make_supplier(db, connection=connection, nomi_id="sup-acme2", name="ACME Limited")
    make_customer(db, connection=connection, nomi_id="cus-nhs", name="NHS England")
    db.commit()
    return Mirror(business, connection)


@pytest.mark.parametrize(
    "text",
    ["453", "Office Expenses", "office expenses", "  OFFICE   expenses ", "cat-453",
     "453 Office Expenses"],
)  # fmt: skip
def test_a_category_is_found_by_code_name_id_or_label_whatever_the_case(
    db: Session, mirror: Mirror, text: str
) -> None:
    assert find_category(db, mirror.business, text).nomi_id == "cat-453"


def test_tax_rates_and_bank_accounts_are_found_by_their_codes_names_and_ids(
    db: Session, mirror: Mirror
) -> None:
    assert find_tax_rate(db, mirror.business, "std20").nomi_id == "tax-std20"
    assert find_tax_rate(db, mirror.business, "Zero rated 0%").nomi_id == "tax-zero"
    assert find_tax_rate(db, mirror.business, "tax-zero").nomi_id == "tax-zero"
    assert find_bank_account(db, mirror.business, "business current account").nomi_id == "bank-cur"
    assert find_bank_account(db, mirror.business, "****4821").nomi_id == "bank-cur"


def test_a_nomi_id_is_matched_exactly_not_folded(db: Session, mirror: Mirror) -> None:
    with pytest.raises(UnknownNameError):
        find_category(db, mirror.business, "CAT-453")


def test_suppliers_and_customers_are_found_by_name_as_rules_match_them(
    db: Session, mirror: Mirror
) -> None:
    assert find_contact(db, mirror.business, "supplier", "staples uk").nomi_id == "sup-staples"
    assert find_contact(db, mirror.business, "supplier", "sup-staples").nomi_id == "sup-staples"
    assert find_contact(db, mirror.business, "customer", "NHS  England").nomi_id == "cus-nhs"
    # "Acme Ltd" is exact; "acme" only matches by key, and two suppliers share that key.
    assert find_contact(db, mirror.business, "supplier", "Acme Ltd").nomi_id == "sup-acme"
    with pytest.raises(AmbiguousNameError) as twice:
        find_contact(db, mirror.business, "supplier", "acme")
    assert "id sup-acme)" in str(twice.value)
    assert str(twice.value).endswith("give its Nomi id")
    assert "id sup-acme2)" in str(twice.value)
    with pytest.raises(UnknownNameError, match="no customer 'Staples UK'"):
        find_contact(db, mirror.business, "customer", "Staples UK")


def test_an_ambiguous_name_lists_the_entries_with_their_codes(db: Session, mirror: Mirror) -> None:
    with pytest.raises(AmbiguousNameError) as refused:
        find_category(db, mirror.business, "rent")
    message = str(refused.value)
    assert "'rent' names 2 categories in business 'bright-smile'" in message
    assert "'Rent' (code 469, id cat-469)" in message
    assert "'Rent' (code 470, id cat-470)" in message
    assert "give its code or Nomi id" in message
    assert refused.value.subject == "category"
    assert len(refused.value.suggestions) == 2
    assert find_category(db, mirror.business, "470").nomi_id == "cat-470"


def test_an_unknown_name_lists_close_matches_with_their_codes(db: Session, mirror: Mirror) -> None:
    with pytest.raises(UnknownNameError) as refused:
        find_category(db, mirror.business, "Ofice Expenses")
    assert "no category 'Ofice Expenses' in business 'bright-smile'" in str(refused.value)
    assert refused.value.suggestions[0] == "'Office Expenses' (code 453)"  # the closest first
    assert "close matches: 'Office Expenses' (code 453)" in str(refused.value)
    assert refused.value.text == "Ofice Expenses"

    with pytest.raises(UnknownNameError) as partial:
        find_category(db, mirror.business, "office")
    assert "'Office Expenses' (code 453)" in partial.value.suggestions

    with pytest.raises(UnknownNameError, match="nothing close") as far:
        find_category(db, mirror.business, "zzzz qqq")
    assert far.value.suggestions == []


def test_suggestions_are_at_most_five_and_never_archived(db: Session, mirror: Mirror) -> None:
    for n in range(8):
        make_category(db, connection=mirror.connection, nomi_id=f"cat-60{n}", code=f"60{n}",
                      name=f"Travel {n}")  # fmt: skip
    db.commit()
    with pytest.raises(UnknownNameError) as refused:
        find_category(db, mirror.business, "travel")
    assert len(refused.value.suggestions) == 5
    with pytest.raises(UnknownNameError) as sundry:
        find_category(db, mirror.business, "sundry")
    assert sundry.value.suggestions == []  # only the archived "Sundry (old)" is close


def test_an_archived_entry_is_refused_by_name_and_an_active_one_of_the_same_name_wins(
    db: Session, mirror: Mirror
) -> None:
    with pytest.raises(ArchivedEntryError) as refused:
        find_category(db, mirror.business, "499")
    assert "category 'Sundry (old)' (code 499, archived) is archived in Nomi" in str(refused.value)
    with pytest.raises(ArchivedEntryError, match="Old Euro Account"):
        find_bank_account(db, mirror.business, "bank-old")
    assert find_category(db, mirror.business, "General Expenses").nomi_id == "cat-430"


def test_a_business_without_mirrored_lists_says_so(db: Session) -> None:
    business = make_business(db, slug="new-shop")
    db.commit()
    with pytest.raises(UnknownNameError, match="has no categories mirrored from Nomi yet"):
        find_category(db, business, "453")
    make_connection(db, business=business)
    db.commit()
    with pytest.raises(UnknownNameError, match="has no tax rates mirrored from Nomi yet"):
        find_tax_rate(db, business, "STD20")


def test_none_clears_and_the_subject_names_the_input(db: Session, mirror: Mirror) -> None:
    tax = ListName.TAX_RATES
    assert nomi_id_or_none(db, mirror.business, tax, " None ") is None
    assert nomi_id_or_none(db, mirror.business, tax, "") is None
    assert nomi_id_or_none(db, mirror.business, tax, "STD20") == "tax-std20"
    with pytest.raises(NameLookupError) as refused:
        nomi_id_or_none(db, mirror.business, tax, "=SUM(A1)", subject="default_tax_costs")
    assert isinstance(refused.value, ValueError)
    assert refused.value.subject == "default_tax_costs"
    assert "no tax rate '=SUM(A1)'" in str(refused.value)


def test_odd_bytes_are_simply_not_found(db: Session, mirror: Mirror) -> None:
    for text in ("a\x00b", "x" * 300):
        with pytest.raises(UnknownNameError):
            find_entry(db, mirror.business, ListName.SUPPLIERS, text)
        with pytest.raises(UnknownNameError):
            find_entry(db, mirror.business, ListName.CATEGORIES, text)


def test_entries_are_listed_by_code_and_stored_ids_shown_in_words(
    db: Session, mirror: Mirror
) -> None:
    codes = [label(c).split()[0] for c in list_entries(db, mirror.business, ListName.CATEGORIES)]
    assert codes == sorted(codes)
    assert len(codes) == 7
    found = list_entries(db, mirror.business, ListName.CATEGORIES, containing="EXPENSES")
    assert [c.nomi_id for c in found] == ["cat-429", "cat-430", "cat-453"]
    assert label_of(db, mirror.business, ListName.CATEGORIES, "cat-453") == "453 Office Expenses"
    assert label_of(db, mirror.business, ListName.CATEGORIES, "cat-gone") == "cat-gone"


def test_items_are_found_by_external_id_in_the_order_given(db: Session, mirror: Mirror) -> None:
    made = {n: make_item(db, business=mirror.business, external_id=n) for n in ("ux-001", "ux-002")}
    other = make_business(db)
    make_item(db, business=other, external_id="ux-003")
    db.commit()

    found = items_by_external_id(db, mirror.business, ["ux-002", " UX-001 ", "ux-002", ""])
    assert [i.id for i in found] == [made["ux-002"].id, made["ux-001"].id]

    with pytest.raises(UnknownItemsError) as refused:
        items_by_external_id(db, mirror.business, ["ux-001", "ux-01", "ux-003", "nothing-like"])
    assert refused.value.unknown == ["ux-01", "ux-003", "nothing-like"]
    message = str(refused.value)
    assert message.startswith("business 'bright-smile' has no items 'ux-01' (close matches: ")
    assert "'ux-003' (close matches: 'ux-002', 'ux-001')" in message  # another business's item
    assert "'nothing-like'" in message
    assert refused.value.suggestions["nothing-like"] == []
    assert isinstance(refused.value, LookupError)
    with pytest.raises(ValueError, match="no item given"):
        items_by_external_id(db, mirror.business, [" "])


def test_a_business_is_found_by_its_slug_in_any_case_and_a_typo_named_with_matches(
    db: Session, mirror: Mirror
) -> None:
    assert get_business(db, " Bright-Smile ").id == mirror.business.id
    with pytest.raises(UnknownBusinessError, match=r"no business 'brigth-smile' \(close matches: "
                       r"'bright-smile'\)"):  # fmt: skip
        get_business(db, "brigth-smile")
