"""Attempt rows carry the item's document: its type, currency, total and base-currency total."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.publishing.run import base_total
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Organisation
from tests.connector.publishing.test_publishing_world import World, attempts
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


@pytest.mark.parametrize(
    ("total", "currency", "base", "rate", "expected"),
    [
        (Decimal("120.00"), "GBP", "GBP", None, Decimal("120.00")),
        (Decimal("120.00"), "GBP", "GBP", Decimal("2"), Decimal("120.00")),  # no rate at home
        (Decimal("100.00"), "EUR", "GBP", Decimal("0.854321"), Decimal("85.43")),
        (Decimal("0.01"), "EUR", "GBP", Decimal("0.5"), Decimal("0.01")),  # half-up
        (Decimal("100.00"), "EUR", "GBP", None, None),  # Nomi's daily rate: the record says
        (Decimal("100.00"), "EUR", None, Decimal("0.85"), None),  # organisation not mirrored
        (None, "GBP", "GBP", None, None),
    ],
)
def test_base_total_is_the_total_at_home_or_at_the_items_rate_to_the_penny(
    total: Decimal | None,
    currency: str,
    base: str | None,
    rate: Decimal | None,
    expected: Decimal | None,
) -> None:
    assert base_total(total, currency, base, rate) == expected


def _mirror_organisation(world: World, base_currency: str = "GBP") -> None:
    with world.session() as s:
        s.add(
            Organisation(
                connection_id=world.connection_id,
                nomi_id=world.nomi.tenant_id,
                name="Bright Smile Dental Ltd",
                base_currency=base_currency,
            )
        )
        s.commit()


def test_every_attempt_row_of_a_published_item_carries_its_document(world: World) -> None:
    _mirror_organisation(world)
    home = world.add(ItemKind.COST)
    rated = world.add(ItemKind.COST, currency="EUR", exchange_rate=Decimal("0.854321"))
    daily = world.add(ItemKind.SALES, currency="EUR")
    world.ready()

    world.publish()

    for item_id in (home, rated, daily):
        assert world.item(item_id).status == ItemStatus.PUBLISHED
    [home_row] = attempts(world, home)
    assert (home_row.document_type, home_row.currency, home_row.total) == (
        "invoice",
        "GBP",
        Decimal("120.00"),
    )
    assert (home_row.base_currency, home_row.base_total) == ("GBP", Decimal("120.00"))
    [rated_row] = attempts(world, rated)
    assert (rated_row.currency, rated_row.base_currency) == ("EUR", "GBP")
    assert rated_row.total is not None
    assert rated_row.base_total == (rated_row.total * Decimal("0.854321")).quantize(Decimal("0.01"))
    record = next(a for a in attempts(world, daily) if a.step == "sales_invoice")
    invoice = world.nomi.find_sales_invoice_by_source_id(str(daily))
    assert invoice is not None
    assert invoice.base_total is not None
    assert (record.currency, record.base_total) == ("EUR", invoice.base_total)  # Nomi's rate


def test_without_a_mirrored_organisation_the_base_columns_stay_empty(world: World) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()

    world.publish()

    [row] = attempts(world, item_id)
    assert (row.document_type, row.currency, row.total) == ("invoice", "GBP", Decimal("120.00"))
    assert (row.base_currency, row.base_total) == (None, None)
