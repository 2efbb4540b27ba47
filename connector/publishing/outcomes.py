"""How publishing an item ended: the outcome, error codes shown on items, and why a batch stops.

``error_code`` and ``attempt_outcome`` classify a Nomi error (the code stored on the item, the
outcome of its attempt row); ``stop_for`` says which batch stop a given-back item asks for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from connector.rules.vocabulary import AttemptOutcome, ErrorCode
from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    NomiError,
    OutcomeUnknownError,
    RejectedError,
)

#: Why a batch stopped early (``ItemOutcome.stop`` / ``BatchResult.stopped``).
STOP_TRANSIENT = "transient"
STOP_CONNECTION_LOST = "connection_lost"
STOP_DAILY_LIMIT = "daily_limit"

#: Outcomes of an item that are not ``AttemptOutcome`` values.
GIVEN_BACK = "given_back"
CLAIM_LOST = "claim_lost"


@dataclass(frozen=True)
class ItemOutcome:
    """How publishing one claimed item ended (``outcome``: an ``AttemptOutcome`` value or
    ``given_back``/``claim_lost``); ``stop`` is set when the batch must stop."""

    item_id: uuid.UUID
    outcome: str
    nomi_record_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    image_error: str | None = None
    payment_recorded: bool = False
    flags: tuple[str, ...] = ()
    stop: str | None = None


def error_code(exc: NomiError) -> str:
    """A stable code for an error (Nomi's first code for a rejection)."""
    if isinstance(exc, RejectedError) and exc.codes:
        return exc.codes[0]
    if isinstance(exc, ConnectionLostError):
        return exc.code or ErrorCode.CONNECTION_EXPIRED
    if isinstance(exc, RejectedError):
        return "rejected"
    if isinstance(exc, OutcomeUnknownError):
        return ErrorCode.OUTCOME_UNKNOWN
    if isinstance(exc, DailyLimitError):
        return ErrorCode.DAILY_LIMIT
    return ErrorCode.TRANSIENT


def attempt_outcome(exc: NomiError) -> AttemptOutcome:
    """The outcome of the attempt row of a Nomi call that raised ``exc``."""
    if isinstance(exc, RejectedError):
        return AttemptOutcome.REJECTED
    if isinstance(exc, ConnectionLostError):
        return AttemptOutcome.CONNECTION_LOST
    if isinstance(exc, OutcomeUnknownError):
        return AttemptOutcome.UNKNOWN
    return AttemptOutcome.TRANSIENT


def stop_for(code: str) -> str:
    """The batch stop asked for by an item given back with ``code``."""
    stops: dict[str, str] = {
        ErrorCode.CONNECTION_EXPIRED: STOP_CONNECTION_LOST,
        ErrorCode.DAILY_LIMIT: STOP_DAILY_LIMIT,
    }
    return stops.get(code, STOP_TRANSIENT)
