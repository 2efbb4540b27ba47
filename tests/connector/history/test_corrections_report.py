"""The report's corrections and voids per business, from real corrections against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from connector.admin.corrections import CorrectionRefusedError
from connector.history.corrections import CORRECTION_COLUMNS, corrections_table, load_corrections
from connector.history.queries import ReportWindow
from connector.history.report.build import build_report
from connector.rules.vocabulary import ItemKind
from tests.connector.publishing.correcting import add_admin, archive, correct, published
from tests.connector.publishing.test_publishing_world import World
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_corrections_archives_voids_and_refusals_are_counted_per_business(world: World) -> None:
    admin = add_admin(world)
    corrected = published(world, ItemKind.COST)
    archived = published(world, ItemKind.COST)
    locked = published(world, ItemKind.COST, date=datetime(2025, 6, 1).date())
    correct(world, corrected, admin, {"category": "493"})
    archive(world, archived, admin)
    world.sandbox.admin.patch(f"/tenants/{world.org.tenant_id}", json={"lock_date": "2025-12-31"})
    with pytest.raises(CorrectionRefusedError):
        correct(world, locked, admin, {"category": "493"})
    today = datetime.now(UTC).date()

    with world.engine.connect() as conn:
        table = load_corrections(conn, ReportWindow(today, today))

    [row] = table.to_dict("records")
    assert row["corrections"] == 2
    assert row["archives"] == 1
    assert row["voided"] == 2
    assert row["refused"] == 1
    report = build_report(world.engine, ReportWindow(today, today), now=datetime.now(UTC))
    assert list(report.corrections.columns) == CORRECTION_COLUMNS
    assert int(report.corrections["voided"].sum()) == 2


def test_a_business_without_corrections_has_no_row_and_missing_counts_read_zero() -> None:
    assert corrections_table(pd.DataFrame(columns=["business", "what", "n"])).empty
    counts = pd.DataFrame(
        [("acme", "voided", 3), ("acme", "corrections", 3), ("beta", "refused", 1)],
        columns=["business", "what", "n"],
    )
    table = corrections_table(counts)
    assert table.to_dict("records") == [
        {"business": "acme", "corrections": 3, "archives": 0, "voided": 3, "refused": 0},
        {"business": "beta", "corrections": 0, "archives": 0, "voided": 0, "refused": 1},
    ]
