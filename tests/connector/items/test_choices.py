"""A publish selection by external id: who may, what is unknown, how "not published" reads."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from connector.access import PermissionDeniedError
from connector.items.choices import (
    choose_items_to_publish,
    selection_markdown,
    selection_message,
    why_not_published,
)
from connector.items.lookup import UnknownItemsError
from connector.rules.vocabulary import ItemStatus
from tests.connector.factories import make_business, make_item, make_membership, make_user


def test_a_selection_is_split_by_external_id_with_why_for_each_item_not_ready(
    db: Session,
) -> None:
    business = make_business(db)
    user = make_user(db)
    make_membership(db, user=user, business=business)
    ready = make_item(db, business=business, external_id="ux-001", status=ItemStatus.READY)
    make_item(
        db,
        business=business,
        external_id="ux-002",
        status=ItemStatus.REVIEW,
        review_reasons=["no category: set one"],
    )
    make_item(db, business=business, external_id="ux-003", status=ItemStatus.PUBLISHED)
    db.commit()

    chosen = choose_items_to_publish(
        db, business=business, external_ids=["UX-001", "ux-002", "ux-003"], acting_email=user.email
    )

    assert chosen.ready == [ready.id]
    assert chosen.names[ready.id] == "ux-001"
    assert chosen.not_ready == {
        "ux-002": "in review: no category: set one",
        "ux-003": "already published",
    }


def test_an_unknown_external_id_is_named_with_close_matches_and_a_stranger_learns_nothing(
    db: Session,
) -> None:
    business = make_business(db)
    user = make_user(db)
    make_membership(db, user=user, business=business)
    make_item(db, business=business, external_id="ux-003")
    db.commit()

    with pytest.raises(UnknownItemsError, match=r"'ux-03' \(close matches: 'ux-003'\)"):
        choose_items_to_publish(
            db, business=business, external_ids=["ux-03"], acting_email=user.email
        )
    with pytest.raises(PermissionDeniedError):
        choose_items_to_publish(
            db, business=business, external_ids=["ux-03"], acting_email="stranger@example.test"
        )


@pytest.mark.parametrize(
    ("outcome", "code", "message", "expected"),
    [
        ("held", None, "new supplier 'Acme'", "held in review: new supplier 'Acme'"),
        ("rejected", "period_locked", "locked", "rejected by Nomi (period_locked): locked"),
        ("rejected", "VALIDATION_ERROR", None, "rejected by Nomi (VALIDATION_ERROR)"),
        (
            "given_back",
            "connection_expired",
            None,
            "given back (connection_expired), published by a later run",
        ),
    ],
)
def test_why_an_item_was_not_published_reads_as_a_person_would_say_it(
    outcome: str, code: str | None, message: str | None, expected: str
) -> None:
    assert why_not_published(outcome, code, message) == expected


def test_the_final_line_names_ten_items_and_counts_the_rest() -> None:
    missed = {f"ux-{n:03d}": "in review: no category" for n in range(12)}

    line = selection_message(3, 15, missed)

    assert line.startswith("published 3 of 15; not published: ux-000 (in review: no category), ")
    assert "ux-009" in line
    assert "ux-010" not in line
    assert line.endswith(" and 2 more")
    assert selection_message(2, 2, {}) == "published 2 of 2"


def test_the_artifact_table_keeps_one_row_per_item_whatever_the_text_holds() -> None:
    markdown = selection_markdown(
        "shop", 0, 1, {"a|b": "rejected by Nomi (X): line one\nline | two"}
    )

    assert "| `a\\|b` | rejected by Nomi (X): line one line \\| two |" in markdown
