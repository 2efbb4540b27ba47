"""History helpers append rows (attempts numbered per item and step, runs inserted once)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.history import records as history
from connector.rules.names import normalise_name
from connector.settings import ConnectorSettings
from connector.store.history_tables import PublishAttempt, PublishRun
from tests.connector.factories import make_business, make_item


def test_attempt_numbers_count_repeats_of_one_step_and_runs_are_inserted_once(
    db: Session,
) -> None:
    business = make_business(db)
    item, other = make_item(db, business=business), make_item(db, business=business)
    run_id = uuid.uuid4()
    calls = [("contact", item), ("expense", item), ("expense", item), ("expense", other)]
    for step, target in calls:
        history.record_attempt(
            db,
            run_id=run_id,
            item_id=target.id,
            business_id=business.id,
            step=step,
            outcome="published",
            http_status=201,
        )
    history.record_publish_run(
        db,
        id=run_id,
        trigger="manual",
        business_id=business.id,
        claimed=2,
        published=2,
        finished_at=datetime.now(UTC),
    )
    db.commit()

    numbers = db.exec(
        select(PublishAttempt.step, PublishAttempt.attempt_no).where(
            PublishAttempt.item_id == item.id
        )
    ).all()
    assert sorted(numbers) == [("contact", 1), ("expense", 1), ("expense", 2)]
    run = db.get(PublishRun, run_id)
    assert run is not None
    assert run.published == 2
    assert not hasattr(history, "update_publish_run")


def test_settings_default_to_a_sqlite_file_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOMI_CONNECTOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("NOMI_CONNECTOR_HOME", "/data/nomi")
    settings = ConnectorSettings()
    assert settings.database_url == "sqlite:////data/nomi/connector.db"
    assert settings.images_dir == Path("/data/nomi/images")
    with pytest.raises(ValueError, match="sqlite"):
        ConnectorSettings(database_url="mysql://x")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Acme & Sons Ltd.", "acme and sons"),
        ("ACME and sons limited", "acme and sons"),
        ("  Café  Nero  ", "cafe nero"),
        ("Harbour Coffee Co", "harbour coffee"),
        ("Ltd", "ltd"),
    ],
)
def test_contact_names_normalise_to_one_matching_key(name: str, key: str) -> None:
    assert normalise_name(name) == key
