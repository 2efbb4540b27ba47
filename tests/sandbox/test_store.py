"""The sandbox store opens a database file written before the December additions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sandbox.api.documents import current_shape
from sandbox.store import Store


def test_an_old_database_file_gains_the_new_organisation_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, short_code TEXT, "
        "currency TEXT NOT NULL, lock_date TEXT, created_at TEXT NOT NULL)"
    )
    old.execute(
        "INSERT INTO tenants VALUES ('t1', 'Old Ltd', NULL, 'GBP', NULL, '2025-01-01T00:00:00Z')"
    )
    old.commit()
    old.close()
    store = Store(str(path))
    try:
        tenant = store.tenant("t1")
        assert tenant is not None
        assert (tenant["vat_registered"], tenant["updated_at"]) == (True, "2025-01-01T00:00:00Z")
        store.set_base_currency("t1", "EUR", "2026-01-01T00:00:00Z")
        assert store.tenant("t1") == {
            **tenant,
            "currency": "EUR",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    finally:
        store.close()


def test_an_old_expense_is_answered_in_todays_shape() -> None:
    stored = json.loads('{"id": "e1", "total": "12.00", "status": "APPROVED"}')
    assert current_shape("expense", stored) == {
        "id": "e1",
        "total": "12.00",
        "status": "ACTIVE",
        "exchange_rate": "1.000000",
        "base_total": "12.00",
        "voided_at": None,
        "lines": [],
    }
