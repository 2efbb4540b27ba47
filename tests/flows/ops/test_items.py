"""import-items and edit-item through the Prefect test server, on SQLite, names not ids."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from connector.store.models import Category, Item
from flows.ops.edit_item import EditItemParams, edit_item
from flows.ops.import_items import ImportItemsParams, import_items
from tests.flows.ops.conftest import OpsBusiness, refusal

pytestmark = pytest.mark.prefect
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def into_inbox(business: OpsBusiness, *names: str) -> Path:
    """Copy example files (and their images) into the business's inbox folder."""
    inbox = business.home / "inbox" / business.slug
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLES / "images", inbox / "images", dirs_exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLES / name, inbox / name)
    return inbox


def item_count(db_session_for: Callable[[], Session]) -> int:
    with db_session_for() as s:
        return int(s.exec(select(sa.func.count()).select_from(Item)).one())


def test_a_member_imports_a_file_from_the_business_inbox_by_its_name(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    into_inbox(ops_business, "items.csv")
    params = ImportItemsParams(
        business=ops_business.slug, acting_user=ops_business.member, file="items.csv"
    )

    first = import_items(params)
    again = import_items(params)

    imported = item_count(db_session_for)
    assert imported > 0
    assert first.startswith(f"items.csv: imported {imported}, already present 0")
    assert again.startswith(f"items.csv: imported 0, already present {imported}")


def test_a_bad_file_fails_naming_line_and_field_and_writes_nothing(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    inbox = into_inbox(ops_business, "bad-items.csv")
    state = import_items(
        ImportItemsParams(
            business=ops_business.slug,
            acting_user=ops_business.member,
            file=str(inbox / "bad-items.csv"),  # an absolute path works too
        ),
        return_state=True,
    )

    message = refusal(state)
    assert "bad-items.csv:" in message
    assert "line 2, tax_amount:" in message
    assert "more problem(s)" in message
    assert item_count(db_session_for) == 0


def mixed_file(business: OpsBusiness) -> str:
    """A file of one good row (bs-0001 of items.csv) and one refused row (a negative tax)."""
    inbox = into_inbox(business)
    good = (EXAMPLES / "items.csv").read_text(encoding="utf-8").splitlines()[:2]
    bad = (EXAMPLES / "bad-items.csv").read_text(encoding="utf-8").splitlines()[1]
    (inbox / "mixed.csv").write_text("\n".join([*good, bad]) + "\n", encoding="utf-8")
    return "mixed.csv"


def test_one_refused_row_fails_the_import_and_nothing_of_the_file_is_written(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    params = ImportItemsParams(
        business=ops_business.slug, acting_user=ops_business.member, file=mixed_file(ops_business)
    )

    message = refusal(import_items(params, return_state=True))

    assert "mixed.csv: 1 of 2 row(s) refused and nothing was imported: line 3, tax_amount:" in (
        message
    )
    assert item_count(db_session_for) == 0


def test_keeping_the_good_rows_imports_them_and_still_fails_naming_the_refused_one(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    params = ImportItemsParams(
        business=ops_business.slug,
        acting_user=ops_business.member,
        file=mixed_file(ops_business),
        keep_good_rows=True,
    )

    message = refusal(import_items(params, return_state=True))

    assert "the other rows were kept (1 imported, 0 already present): line 3" in message
    with db_session_for() as s:
        assert list(s.exec(select(Item.external_id))) == ["bs-0001"]


@pytest.mark.parametrize(
    ("file", "why"),
    [("../elsewhere.csv", "not a file name in the inbox"), ("nothing.csv", "nothing.csv")],
)
def test_a_file_outside_the_inbox_or_missing_fails_in_one_line(
    ops_business: OpsBusiness, file: str, why: str
) -> None:
    state = import_items(
        ImportItemsParams(business=ops_business.slug, acting_user=ops_business.admin, file=file),
        return_state=True,
    )
    assert why in refusal(state)


def test_an_outsider_may_not_import(ops_business: OpsBusiness) -> None:
    into_inbox(ops_business, "items.csv")
    state = import_items(
        ImportItemsParams(
            business=ops_business.slug, acting_user=ops_business.outsider, file="items.csv"
        ),
        return_state=True,
    )
    assert "items.import" in refusal(state)


def test_a_member_sets_an_items_category_by_name_and_a_typo_names_close_ids(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    into_inbox(synced_business, "items.csv")
    who = {"business": synced_business.slug, "acting_user": synced_business.member}
    import_items(ImportItemsParams(**who, file="items.csv"))

    typo = edit_item(EditItemParams(**who, item="bs-004", category="453"), return_state=True)
    message = refusal(typo)
    assert "no item 'bs-004'" in message
    assert "'bs-0004'" in message
    edited = edit_item(EditItemParams(**who, item="BS-0004", category="Office Expenses"))

    assert edited.startswith("bs-0004: ready; category 453 Office Expenses")
    with db_session_for() as s:
        item = s.exec(select(Item).where(Item.external_id == "bs-0004")).one()
        office = s.exec(select(Category).where(Category.code == "453")).one()
        assert item.category_edit == office.nomi_id
        assert item.status == "ready"
