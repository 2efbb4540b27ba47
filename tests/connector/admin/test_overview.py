"""The business overview reads one business's rows and renders them as ops read them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from connector.admin.overview import NAMED_ITEMS, load_overview, overview_markdown
from connector.history import records as history
from connector.rules.vocabulary import ItemStatus
from connector.store.history_tables import SyncRun
from connector.store.models import ConnectionSettings
from tests.connector.factories import (
    make_bank_account,
    make_business,
    make_category,
    make_connection,
    make_contact_rule,
    make_item,
    make_payment_method,
    make_tax_rate,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_never_connected_business_says_so_and_still_lists_its_items(db: Session) -> None:
    business = make_business(db, name="Quiet Ltd")
    make_item(db, business=business, external_id="q-1", status=ItemStatus.READY)
    db.commit()

    markdown = overview_markdown(load_overview(db, business), now=NOW)

    assert "Not connected to Nomi: run **connect-to-nomi**." in markdown
    assert "## Items waiting (1)" in markdown
    assert "| q-1 | ready | ready: waits for the next publish |" in markdown
    assert "- publish: never" in markdown


def test_the_overview_shows_connection_settings_rules_lists_items_and_last_runs(
    db: Session,
) -> None:
    business = make_business(db, name="Harbour Coffee Co")
    connection = make_connection(
        db, business=business, consent_expires_at=NOW + timedelta(days=12, hours=1)
    )
    settings = db.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
    ).one()
    office = make_category(db, connection=connection, code="453", name="Office Expenses")
    make_category(db, connection=connection, code="999", name="Old", status="ARCHIVED")
    standard = make_tax_rate(db, connection=connection, code="STD20", name="Standard 20%")
    account = make_bank_account(db, connection=connection, name="Business current")
    settings.default_tax_costs = standard.nomi_id
    db.add(settings)
    make_payment_method(
        db, business=business, name="Company card", bank_account_nomi_id=account.nomi_id
    )
    make_contact_rule(
        db,
        connection=connection,
        name="Screwfix",
        category_nomi_id=office.nomi_id,
        tax_rate_nomi_id=standard.nomi_id,
        auto_publish=True,
    )
    no_category = "no category: set one on the item or add a supplier rule for '{}'"
    for n, supplier in enumerate(["Acme", "Kwik Fit", "Royal Mail"]):
        make_item(
            db,
            business=business,
            external_id=f"ux-00{n + 1}",
            status=ItemStatus.REVIEW,
            review_reasons=[no_category.format(supplier)],
        )
    make_item(
        db,
        business=business,
        external_id="ux-004",
        status=ItemStatus.READY,
        last_error_code="period_locked",
    )
    make_item(db, business=business, external_id="ux-005", status=ItemStatus.PUBLISHED)
    run_id = uuid.uuid4()
    history.record_publish_run(
        db,
        id=run_id,
        trigger="schedule",
        business_id=business.id,
        started_at=NOW - timedelta(minutes=5),
        finished_at=NOW,
        published=7,
        failed=1,
    )
    db.add(
        SyncRun(
            connection_id=connection.id,
            list_name="categories",
            mode="full",
            started_at=NOW - timedelta(hours=1),
            fetched=12,
            status="ok",
        )
    )
    db.commit()

    markdown = overview_markdown(load_overview(db, business), now=NOW)

    assert "# Harbour Coffee Co" in markdown
    assert "- status: **connected**" in markdown
    assert "(12 days)" in markdown
    assert "| auto_publish | no |" in markdown
    assert "| default_tax_costs | STD20 Standard 20% |" in markdown  # the code, not the Nomi id
    assert (
        "| supplier | Screwfix | 453 Office Expenses | STD20 Standard 20% | yes | user |"
        in markdown
    )
    assert "| Company card | Business current (****1234) |" in markdown
    assert "| 453 | Office Expenses | EXPENSE |" in markdown
    assert "Old" not in markdown  # archived entries are not offered
    assert "| STD20 | Standard 20% | 20 | BOTH |" in markdown
    assert "## Items waiting (4)" in markdown
    assert "| in review: no category | 3 |" in markdown  # grouped by kind, not by supplier
    assert (
        "| ready: rejected by Nomi (period_locked), waits for an edit or publish-items | 1 |"
        in (markdown)
    )
    assert "| ux-001 | review | no category: set one on the item" in markdown
    assert "ux-005" not in markdown  # published: not waiting
    assert "- publish: 2026-12-03 11:55 UTC (schedule): published 7, failed 1" in markdown
    assert "- sync categories (full): 2026-12-03 11:00 UTC, ok, fetched 12" in markdown


def test_only_the_first_items_are_named_and_every_item_is_counted(db: Session) -> None:
    business = make_business(db)
    for n in range(NAMED_ITEMS + 5):
        make_item(db, business=business, external_id=f"it-{n:03d}", status=ItemStatus.READY)
    db.commit()

    view = load_overview(db, business)

    assert view.waiting_total == NAMED_ITEMS + 5
    assert [w.external_id for w in view.waiting] == [f"it-{n:03d}" for n in range(NAMED_ITEMS)]
    assert view.waiting_by_reason == [("ready: waits for the next publish", NAMED_ITEMS + 5)]
