"""The nomi-connector CLI: ``items release`` and ``items archive`` (issue 21)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import Item
from tests.connector.admin.conftest import EXAMPLES, IMPORTER, Run

HEADER = (EXAMPLES / "items.csv").read_text(encoding="utf-8").splitlines()[0]
# bs-0002 again under another id and the supplier's full legal name: a possible duplicate
AGAIN = (
    "bs-again,cost,BT BUSINESS LIMITED,BT-880214-B,2026-03-05,,GBP,66.00,11.00,again,,,false,,,,"
)


def _reasons(run: Run, external_id: str) -> list[str]:
    listed = run("items", "list", "--business", "bright-smile", "--json")
    [row] = [
        r for r in map(json.loads, listed.output.splitlines()) if r["external_id"] == external_id
    ]
    return list(row["reasons"])


def test_a_held_duplicate_is_released_and_an_item_archived_by_admins_only(
    run: Run, bright_smile: None, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "again.csv"
    source.write_text(f"{HEADER}\n{AGAIN}\n", encoding="utf-8")
    for path in (EXAMPLES / "items.csv", source):
        imported = run("items", "import", str(path), "--business", "bright-smile", *IMPORTER)
        assert imported.exit_code == 0, imported.output
    assert any(r.startswith("possible duplicate of bs-0002: same supplier, date and total")
               for r in _reasons(run, "bs-again"))  # fmt: skip

    release = ("items", "release", "bs-again", "--business", "bright-smile")
    refused = run(*release, "--acting-user", "clerk@bright.example")
    assert refused.exit_code == 1
    assert "may not perform 'item.release'" in refused.output
    released = run(*release, "--acting-user", "owner@bright.example")
    assert released.exit_code == 0, released.output
    assert released.output.startswith("bs-again: ")
    assert "not a duplicate of bs-0002" in released.output
    assert not any("duplicate" in r for r in _reasons(run, "bs-again"))
    again = run(*release, "--acting-user", "owner@bright.example")
    assert again.exit_code == 1
    assert "is not held as a possible duplicate" in again.output

    archive = ("items", "archive", "bs-0003", "--business", "bright-smile")
    assert run(*archive, "--acting-user", "clerk@bright.example").exit_code == 1
    archived = run(*archive, "--actor", "books@ledger.example")
    assert archived.exit_code == 0, archived.output
    assert archived.output.startswith("bs-0003: archived")

    engine = make_engine(database_url)
    with Session(engine) as db, db.begin():
        db.execute(
            sa.update(Item).where(col(Item.external_id) == "bs-0004").values(status="published")
        )
    published = run("items", "archive", "bs-0004", "--business", "bright-smile",
                    "--acting-user", "owner@bright.example")  # fmt: skip
    assert published.exit_code == 1
    assert "is published: void it in Nomi and archive it with `items void`" in published.output
    with Session(engine) as db:
        statuses = dict(db.exec(select(Item.external_id, Item.status)).all())
        audit = db.exec(
            select(AuditLog.action, AuditLog.allowed).where(
                AuditLog.action.in_(["item.release", "item.archive"])  # type: ignore[attr-defined]
            )
        ).all()
    engine.dispose()
    assert (statuses["bs-0003"], statuses["bs-0004"]) == ("archived", "published")
    assert ("item.release", False) in audit
    assert ("item.archive", False) in audit
    assert ("item.archive", True) in audit
