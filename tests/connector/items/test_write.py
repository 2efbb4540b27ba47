"""Intake's write pass: short chunked transactions, concurrent imports, an interrupted import."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.items.intake import import_items
from connector.store.history_tables import AuditLog
from connector.store.models import Business
from tests.connector.items.conftest import CLERK, items_of, write_rows


def test_a_big_import_commits_in_chunks_and_other_writers_get_in_between(
    engine: Engine, business: Business, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2: no single write transaction holds the lock for the whole file."""
    import sqlalchemy as sa
    from sqlalchemy import event

    from connector.store.db import make_engine

    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 100)
    source = write_rows(tmp_path / "many.csv", 650)
    other = make_engine(str(engine.url))
    seen_between: list[int] = []

    def write_elsewhere(_session: Session) -> None:
        with other.begin() as conn:  # another writer, as `settings set` would be
            conn.execute(sa.text("UPDATE businesses SET name = name || '.'"))
            seen_between.append(conn.execute(sa.text("SELECT count(*) FROM items")).scalar_one())

    with Session(engine) as session:
        event.listen(session, "after_commit", write_elsewhere)
        report = import_items(
            session, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
    other.dispose()

    assert len(report.imported) == 650
    assert sorted({n for n in seen_between if 0 < n < 650}) == [100, 200, 300, 400, 500, 600]
    assert report.longest_write_seconds < 1.0


def test_two_imports_of_one_file_at_once_import_it_once_and_report_the_rest_present(
    engine: Engine, business: Business, tmp_path: Path
) -> None:
    """Finding 7: both imports check before either inserts; no raw UniqueViolation."""
    import threading

    from sqlalchemy import event

    from connector.store.db import make_engine

    source = write_rows(tmp_path / "twice.csv", 40)
    barrier = threading.Barrier(2, timeout=1.5)
    reports: list[object] = []

    def before_insert(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ITEMS"):
            # both have looked for present rows (on SQLite the other waits for the lock)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    def run_import() -> None:
        own = make_engine(str(engine.url))  # as a second process would
        event.listen(own, "before_cursor_execute", before_insert)
        try:
            with Session(own) as session:
                reports.append(
                    import_items(
                        session,
                        source,
                        business_id=business.id,
                        actor_email=CLERK,
                        images_dir=tmp_path / "i",
                    )
                )
        except Exception as exc:  # reported below
            reports.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(not isinstance(r, Exception) for r in reports), reports
    counts = sorted((len(r.imported), len(r.duplicates)) for r in reports)  # type: ignore[attr-defined]
    assert counts == [(0, 40), (40, 0)]
    with Session(engine) as session:
        assert len(items_of(session, business)) == 40


def test_an_import_stopped_while_writing_says_so_and_the_same_import_adds_the_rest(
    db: Session, business: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    import connector.items.write
    from connector.items.intake import IntakeInterruptedError

    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 100)
    source = write_rows(tmp_path / "busy.csv", 450)
    real = connector.items.write.Inserter.insert
    calls: list[int] = []

    def busy_on_the_third(
        self: object, connection: object, ids: object, params: list[object]
    ) -> object:
        calls.append(len(params))
        if len(calls) == 3:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(self, connection, ids, params)  # type: ignore[arg-type]

    monkeypatch.setattr(connector.items.write.Inserter, "insert", busy_on_the_third)
    with pytest.raises(IntakeInterruptedError, match=r"database stayed busy.*after 200 item"):
        import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
    assert len(items_of(db, business)) == 200
    [audit] = db.exec(select(AuditLog).where(AuditLog.action == "items.import")).all()
    assert audit.detail["interrupted"] is True
    assert audit.detail["imported"] == 200

    monkeypatch.setattr(connector.items.write.Inserter, "insert", real)
    again = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )
    assert (len(again.imported), len(again.duplicates)) == (250, 200)
    assert len(items_of(db, business)) == 450
