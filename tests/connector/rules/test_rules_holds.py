"""The rules engine as a table: the lock date and possible duplicates hold an item in review."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from connector.rules.engine import resolve
from connector.rules.facts import DuplicateRef, OrganisationRef
from tests.connector.rules.test_rules_world import READY, check, context, item

LOCK = dt.date(2025, 3, 31)
FIRST = DuplicateRef("inv-1", "supplier, date and total", "exp-9")
SECOND = DuplicateRef("inv-2", "supplier and reference")

TABLE = [
    pytest.param({"date": dt.date(2025, 4, 1)}, LOCK, READY, id="dated after the lock date"),
    pytest.param(
        {"date": LOCK},
        LOCK,
        {
            "status": "review",
            "reasons": ["dated 2025-03-31, on or before Nomi's lock date 2025-03-31"],
        },
        id="dated on the lock date",
    ),
    pytest.param(
        {"date": dt.date(2024, 1, 1)},
        LOCK,
        {"status": "review", "reasons": ["dated 2024-01-01, on or before Nomi's lock date"]},
        id="dated before the lock date",
    ),
    pytest.param({"date": dt.date(2020, 1, 1)}, None, READY, id="no lock date"),
    pytest.param(
        {"possible_duplicates": (FIRST,)},
        None,
        {
            "status": "review",
            "reasons": [
                "possible duplicate of inv-1 (Nomi record exp-9): same supplier, date and total"
            ],
        },
        id="a duplicate of a published item names its Nomi record",
    ),
    pytest.param(
        {"possible_duplicates": (FIRST, SECOND), "date": LOCK},
        LOCK,
        {
            "status": "review",
            "reasons": [
                "on or before Nomi's lock date",
                "possible duplicate of inv-1 (Nomi record exp-9)",
                "possible duplicate of inv-2: same supplier and reference",
            ],
        },
        id="every hold is a reason of its own",
    ),
]


@pytest.mark.parametrize(("facts", "lock", "expect"), TABLE)
def test_holds(facts: dict[str, Any], lock: dt.date | None, expect: dict[str, Any]) -> None:
    ctx = dataclasses.replace(context(), organisation=OrganisationRef("GBP", lock))
    check(resolve(item(**facts), ctx), expect)


def test_an_item_without_a_date_is_not_held_by_the_lock_date_but_for_its_date() -> None:
    ctx = dataclasses.replace(context(), organisation=OrganisationRef("GBP", LOCK))
    check(resolve(item(date=None), ctx), {"status": "review", "reasons": ["no date"]})
