"""history export: both formats read back with pandas, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.errors import UnknownBusinessError
from connector.history.export import EXPORT_COLUMNS, export_attempts
from connector.history.queries import ReportWindow
from connector.history.records import record_attempt, record_publish_run
from tests.connector.factories import make_business, make_item

DAY = date(2026, 3, 5)
AT = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def attempts(engine: Engine) -> dict[str, object]:
    """Business acme: 2 attempts on DAY (a transient then published, with a run), 1 the day before;
    business bolt: 1 rejected attempt on DAY with no run row."""
    with Session(engine, expire_on_commit=False) as s:
        acme = make_business(s, slug="acme")
        bolt = make_business(s, slug="bolt")
        item = make_item(s, business=acme, ready_at=AT - timedelta(minutes=5))
        other = make_item(s, business=bolt, kind="sales")
        run = uuid.uuid4()
        record_publish_run(
            s, id=run, trigger="manual", business_id=acme.id, started_at=AT, finished_at=AT
        )
        record_attempt(
            s,
            run_id=uuid.uuid4(),
            item_id=item.id,
            business_id=acme.id,
            step="expense",
            outcome="transient",
            at=AT - timedelta(days=1),
        )
        first = record_attempt(
            s,
            run_id=run,
            item_id=item.id,
            business_id=acme.id,
            step="expense",
            outcome="transient",
            http_status=503,
            error_code="SERVER_ERROR",
            error_message="try later",
            latency_ms=1200,
            at=AT,
        )
        second = record_attempt(
            s,
            run_id=run,
            item_id=item.id,
            business_id=acme.id,
            step="expense",
            outcome="published",
            http_status=201,
            nomi_record_id="exp-9",
            latency_ms=85,
            at=AT + timedelta(seconds=3),
        )
        lonely = record_attempt(
            s,
            run_id=uuid.uuid4(),
            item_id=other.id,
            business_id=bolt.id,
            step="sales_invoice",
            outcome="rejected",
            http_status=422,
            error_code="VALIDATION",
            at=AT + timedelta(hours=1),
        )
        s.commit()
        return {"run": run, "item": item, "first": first, "second": second, "lonely": lonely}


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, parse_dates=[c for c in EXPORT_COLUMNS if c.endswith("at")])
    return pd.read_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_one_row_per_attempt_of_the_window_with_every_column(
    engine: Engine, attempts: dict[str, object], tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"attempts.{fmt}"
    written = export_attempts(engine, ReportWindow(DAY, DAY), path, fmt=fmt, chunk_rows=2)  # type: ignore[arg-type]

    frame = _read(path, fmt)
    assert written == 3
    assert list(frame.columns) == EXPORT_COLUMNS
    assert frame["attempt_id"].tolist() == [
        str(attempts["first"].id),  # type: ignore[attr-defined]
        str(attempts["second"].id),  # type: ignore[attr-defined]
        str(attempts["lonely"].id),  # type: ignore[attr-defined]
    ]
    first = frame.iloc[0]
    assert first["business"] == "acme"
    assert first["item_id"] == str(attempts["item"].id)  # type: ignore[attr-defined]
    assert first["item_kind"] == "cost"
    assert first["run_id"] == str(attempts["run"])
    assert first["run_trigger"] == "manual"
    assert (first["attempt_no"], first["step"], first["outcome"]) == (2, "expense", "transient")
    assert (first["http_status"], first["error_code"]) == (503, "SERVER_ERROR")
    assert first["error_message"] == "try later"
    assert first["latency_ms"] == 1200
    assert pd.Timestamp(first["at"]) == pd.Timestamp(AT)
    assert pd.Timestamp(first["item_ready_at"]) == pd.Timestamp(AT - timedelta(minutes=5))
    second = frame.iloc[1]
    assert (second["outcome"], second["nomi_record_id"], second["latency_ms"]) == (
        "published",
        "exp-9",
        85,
    )
    lonely = frame.iloc[2]
    assert (lonely["business"], lonely["item_kind"], lonely["error_code"]) == (
        "bolt",
        "sales",
        "VALIDATION",
    )
    assert pd.isna(lonely["run_trigger"])
    assert pd.isna(lonely["run_started_at"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_has_the_document_columns_and_leaves_them_empty_on_older_attempts(
    engine: Engine, attempts: dict[str, object], tmp_path: Path, fmt: str
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        credit = record_attempt(
            s,
            run_id=uuid.uuid4(),
            item_id=attempts["item"].id,  # type: ignore[attr-defined]
            business_id=attempts["item"].business_id,  # type: ignore[attr-defined]
            step="expense",
            outcome="published",
            at=AT + timedelta(hours=2),
            document_type="credit_note",
            currency="EUR",
            total=Decimal("100.00"),
            base_currency="GBP",
            base_total=Decimal("85.43"),
        )
        s.commit()
    path = tmp_path / f"attempts.{fmt}"
    export_attempts(engine, ReportWindow(DAY, DAY), path, fmt=fmt)  # type: ignore[arg-type]

    frame = _read(path, fmt).set_index("attempt_id")
    new = frame.loc[str(credit.id)]
    assert (new["document_type"], new["currency"], new["base_currency"]) == (
        "credit_note",
        "EUR",
        "GBP",
    )
    assert Decimal(str(new["total"])) == Decimal("100.00")
    assert Decimal(str(new["base_total"])) == Decimal("85.43")
    old = frame.loc[str(attempts["second"].id)]  # type: ignore[attr-defined]
    for column in ("document_type", "currency", "total", "base_currency", "base_total"):
        assert pd.isna(old[column]), column  # not recorded: empty, never 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_for_one_business_keeps_only_its_attempts(
    engine: Engine, attempts: dict[str, object], tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "out" / f"bolt.{fmt}"
    window = ReportWindow(DAY - timedelta(days=1), DAY, business="bolt")
    assert export_attempts(engine, window, path, fmt=fmt) == 1  # type: ignore[arg-type]
    assert _read(path, fmt)["business"].tolist() == ["bolt"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_of_an_empty_window_is_a_file_with_only_the_columns(
    engine: Engine, attempts: dict[str, object], tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"empty.{fmt}"
    window = ReportWindow(date(2025, 1, 1), date(2025, 1, 2))
    assert export_attempts(engine, window, path, fmt=fmt) == 0  # type: ignore[arg-type]
    frame = _read(path, fmt)
    assert frame.empty
    assert list(frame.columns) == EXPORT_COLUMNS


def test_export_refuses_an_unknown_business_and_format(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(UnknownBusinessError, match="nobody"):
        export_attempts(engine, ReportWindow(DAY, DAY, "nobody"), tmp_path / "x.csv", fmt="csv")
    with pytest.raises(ValueError, match="xlsx"):
        export_attempts(engine, ReportWindow(DAY, DAY), tmp_path / "x.xlsx", fmt="xlsx")  # type: ignore[arg-type]


def test_a_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        ReportWindow(DAY, DAY - timedelta(days=1))


def test_cli_history_export_writes_the_file_and_refuses_an_unknown_business(
    database_url: str, engine: Engine, attempts: dict[str, object], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from connector.admin.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.parquet"
    base = ["--database-url", database_url, "history", "export", "--since", "2026-03-05"]
    result = runner.invoke(
        app, [*base, "--until", "2026-03-05", "--format", "parquet", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "exported 3 attempts" in result.output
    assert len(pd.read_parquet(out)) == 3

    refused = runner.invoke(
        app, [*base, "--business", "nobody", "--format", "csv", "--output", str(tmp_path / "x.csv")]
    )
    assert refused.exit_code == 1
    assert "nobody" in refused.output
    bad = runner.invoke(app, [*base, "--format", "xlsx", "--output", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2  # a usage error: the formats are a choice, listed in the message
