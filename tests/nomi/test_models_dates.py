"""Read models accept ``/Date(ms+0000)/`` in their date and timestamp fields, and only there."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from nomi.models import Payment, Supplier

MOMENT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_timestamp_fields_parse_xero_style_dates_from_python_and_json() -> None:
    """``updated_at`` accepts the ``/Date(..)/`` form; other string fields keep it as text."""
    raw = {"id": "s1", "name": "/Date(5)/", "updated_at": "/Date(1700000000000+0000)/"}
    supplier = Supplier.model_validate(raw)
    assert supplier.updated_at == MOMENT
    assert supplier.name == "/Date(5)/"
    assert Supplier.model_validate_json(json.dumps(raw)).updated_at == MOMENT


def test_date_fields_parse_xero_style_midnight() -> None:
    """A ``date`` field given a midnight ``/Date(..)/`` becomes that day."""
    payment = Payment.model_validate(
        {
            "id": "p1",
            "bank_account_id": "b1",
            "amount": "1.00",
            "date": "/Date(1699920000000+0000)/",
        }
    )
    assert payment.date == date(2023, 11, 14)
