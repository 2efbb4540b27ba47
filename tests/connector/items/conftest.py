"""Shared fixtures and helpers of the item tests: a business with a clerk, and intake files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.store.models import Business, Item, Role
from tests.connector.factories import make_business, make_membership, make_payment_method, make_user

CLERK = "clerk@bright.example"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
HEADER = (
    "external_id,kind,contact_name,reference,date,due_date,currency,total,tax_amount,description,"
    "category,tax_rate,paid,payment_method,claimant_email,claimant_nomi_user_id,image\n"
)
ROW = "{n},cost,Staples UK,R{n},2026-03-02,,GBP,12.00,2.00,paper,,,no,,,,{image}\n"


@pytest.fixture
def business(db: Session) -> Business:
    business = make_business(db, slug="bright-smile")
    make_membership(db, user=make_user(db, email=CLERK), business=business, role=Role.STANDARD)
    make_payment_method(db, business=business, name="Company credit card")
    make_payment_method(db, business=business, name="Business current account")
    db.commit()
    return business


def items_of(db: Session, business: Business) -> list[Item]:
    """The business's items."""
    return list(db.exec(select(Item).where(Item.business_id == business.id)))


def write_rows(path: Path, count: int, *, image: str = "", start: int = 0) -> Path:
    """A CSV of ``count`` good cost rows (``big-<n>``), each naming ``image`` if given."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for n in range(start, start + count):
            handle.write(ROW.format(n=f"big-{n:06d}", image=image))
    return path
