"""NomiClient over httpx.MockTransport: paging, retries, token refresh, outcome-unknown writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from nomi.client import MAX_REFRESHES_PER_REQUEST, NomiClient
from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    OutcomeUnknownError,
    PaginationError,
    RejectedError,
    ServerError,
    TransientError,
)
from nomi.models import ExpenseCreate
from nomi.retry import RetryPolicy
from nomi.tokens import StaticTokenProvider

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=1.0)
Handler = Callable[[httpx.Request], httpx.Response]


def supplier(i: int) -> dict:
    return {
        "id": f"s{i}",
        "name": f"Supplier {i}",
        "status": "ACTIVE",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def envelope(page: int, ids: range, page_count: int | None = None) -> dict:
    pagination = {"page": page, "page_size": 2}
    if page_count is not None:
        pagination["page_count"] = page_count
    return {
        "items": [supplier(i) for i in ids],
        "pagination": pagination,
        "server_time": f"2026-02-0{page}T00:00:00Z",
    }


def make_client(handler: Handler, tokens=None, retry: RetryPolicy = FAST) -> NomiClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return NomiClient(
        "http://nomi.test/api/v1",
        "tenant-1",
        tokens or StaticTokenProvider("tok"),
        retry=retry,
        http=http,
    )


def expense() -> ExpenseCreate:
    return ExpenseCreate(
        kind="company",
        date=date(2026, 1, 2),
        currency="GBP",
        total=Decimal("12.50"),
        category_id="c1",
        source_id="item-1",
    )


def test_lists_stream_every_page_and_bookmark_the_first_server_time() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = int(request.url.params["page"])
        ids = {1: range(0, 2), 2: range(2, 4), 3: range(4, 5)}[page]
        return httpx.Response(200, json=envelope(page, ids))

    with make_client(handler) as nomi:
        result = nomi.iter_suppliers(
            updated_since=datetime(2026, 1, 1, tzinfo=UTC), include_archived=True, page_size=2
        )
        names = [s.id for s in result]
    assert names == ["s0", "s1", "s2", "s3", "s4"]
    assert result.server_time == datetime(2026, 2, 1, tzinfo=UTC)
    assert result.pages == 3
    first = seen[0]
    assert first.url.path == "/api/v1/suppliers"
    assert first.url.params["updated_since"] == "2026-01-01T00:00:00Z"
    assert first.url.params["include_archived"] == "true"
    assert first.headers["Nomi-Tenant-Id"] == "tenant-1"
    assert first.headers["Authorization"] == "Bearer tok"


def test_lists_stop_at_page_count_without_an_extra_request() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        calls.append(page)
        return httpx.Response(200, json=envelope(page, range(page * 2, page * 2 + 2), 2))

    with make_client(handler) as nomi:
        assert len(list(nomi.iter_suppliers(page_size=2))) == 4
    assert calls == [1, 2]


def test_a_repeated_page_is_an_error_not_an_endless_loop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(int(request.url.params["page"]), range(0, 2)))

    with make_client(handler) as nomi, pytest.raises(PaginationError, match="repeated"):
        list(nomi.iter_suppliers(page_size=2))


def test_a_page_number_going_back_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return httpx.Response(200, json=envelope(1, range(page * 2, page * 2 + 2)))

    with make_client(handler) as nomi, pytest.raises(PaginationError, match="got page 1"):
        list(nomi.iter_suppliers(page_size=2))


def test_a_list_can_only_be_iterated_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(1, range(0, 1)))

    with make_client(handler) as nomi:
        result = nomi.iter_suppliers(page_size=2)
        list(result)
        with pytest.raises(RuntimeError):
            list(result)


def test_gets_are_retried_through_5xx_and_429() -> None:
    answers = [
        httpx.Response(503, text="<html>down</html>"),
        httpx.Response(429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "0"}),
        httpx.Response(200, json=envelope(1, range(0, 1))),
    ]

    with make_client(lambda request: answers.pop(0)) as nomi:
        assert [s.id for s in nomi.iter_suppliers()] == ["s0"]
    assert answers == []


def test_retries_are_bounded_in_attempts() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(502, text="<html>bad gateway</html>")

    with make_client(handler) as nomi, pytest.raises(ServerError):
        list(nomi.iter_suppliers())
    assert calls == FAST.max_attempts


def test_a_retry_after_beyond_the_cap_is_raised_not_slept() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "500"})

    with make_client(handler) as nomi, pytest.raises(Exception, match="rate limited"):
        list(nomi.iter_suppliers())
    assert calls == 1


def test_the_daily_limit_is_surfaced_at_once() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"X-Rate-Limit-Problem": "day", "Retry-After": "66975"})

    with make_client(handler) as nomi, pytest.raises(DailyLimitError) as caught:
        list(nomi.iter_suppliers())
    assert calls == 1
    assert caught.value.retry_after == 66975.0


class CountingTokens:
    def __init__(self) -> None:
        self.current = "old"
        self.rejected: list[str] = []

    def access_token(self) -> str:
        return self.current

    def refresh_after_rejection(self, rejected_token: str) -> str:
        self.rejected.append(rejected_token)
        self.current = f"new{len(self.rejected)}"
        return self.current


def test_token_expired_refreshes_once_and_retries_once() -> None:
    tokens = CountingTokens()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json={"status": 401, "detail": "TokenExpired: expired"})
        return httpx.Response(200, json=[{"tenantId": "t1", "tenantName": "Bright Smile"}])

    with make_client(handler, tokens) as nomi:
        orgs = nomi.connections()
    assert [o.tenant_name for o in orgs] == ["Bright Smile"]
    assert tokens.rejected == ["old"]


def test_a_token_rejected_after_fresh_refreshes_is_transient_not_a_lost_connection() -> None:
    tokens = CountingTokens()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": 401, "detail": "TokenExpired: expired"})

    with make_client(handler, tokens) as nomi, pytest.raises(TransientError) as raised:
        nomi.connections()
    assert not isinstance(raised.value, ConnectionLostError)
    assert raised.value.status == 401
    # A bounded number of refreshes, each with the token just rejected; none after that.
    assert tokens.rejected == ["old", "new1", "new2"][:MAX_REFRESHES_PER_REQUEST]
    assert len(tokens.rejected) == MAX_REFRESHES_PER_REQUEST


def test_a_consent_expired_rejection_after_a_refresh_is_a_lost_connection() -> None:
    tokens = CountingTokens()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": 401, "detail": "consent expired"})

    with make_client(handler, tokens) as nomi, pytest.raises(ConnectionLostError) as raised:
        nomi.connections()
    assert raised.value.code == "consent_expired"


def test_a_write_whose_response_was_lost_is_retried_with_the_same_key() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ReadTimeout("lost", request=request)
        body = json.loads(request.content)
        return httpx.Response(
            201, json={"id": "e1", **body}, headers={"Idempotent-Replayed": "true"}
        )

    with make_client(handler) as nomi:
        created = nomi.create_expense(expense(), idempotency_key="key-1")
    assert keys == ["key-1", "key-1"]
    assert created.id == "e1"
    assert created.total == Decimal("12.50")


def test_the_request_body_sends_money_as_strings_and_dates_as_iso() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "e1", **bodies[-1]})

    with make_client(handler) as nomi:
        nomi.create_expense(expense(), idempotency_key="key-1")
    assert bodies[0]["total"] == "12.50"
    assert bodies[0]["date"] == "2026-01-02"
    assert "tax_amount" not in bodies[0]


def test_exhausted_retries_after_a_maybe_sent_write_raise_outcome_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("reset", request=request)

    with make_client(handler) as nomi, pytest.raises(OutcomeUnknownError, match="source_id"):
        nomi.create_expense(expense(), idempotency_key="key-1")


def test_a_refused_connection_on_a_write_is_not_outcome_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with make_client(handler) as nomi, pytest.raises(Exception) as caught:
        nomi.create_expense(expense(), idempotency_key="key-1")
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_a_rejected_write_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            400,
            json={
                "status": 400,
                "detail": "period locked",
                "errors": [{"field": "date", "code": "period_locked"}],
            },
        )

    with make_client(handler) as nomi, pytest.raises(RejectedError) as caught:
        nomi.create_expense(expense(), idempotency_key="key-1")
    assert calls == 1
    assert caught.value.codes == ["period_locked"]


def test_find_by_source_id_returns_the_record_or_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sid = request.url.params["source_id"]
        items = (
            []
            if sid == "missing"
            else [
                {
                    "id": "e9",
                    "kind": "company",
                    "date": "2026-01-02",
                    "currency": "GBP",
                    "total": "1.00",
                    "source_id": sid,
                }
            ]
        )
        return httpx.Response(200, json={"items": items})

    with make_client(handler) as nomi:
        found = nomi.find_expense_by_source_id("item-1")
        assert found is not None
        assert found.id == "e9"
        assert nomi.find_expense_by_source_id("missing") is None


def test_attachment_upload_puts_raw_bytes_under_an_encoded_filename() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "a1", "filename": "receipt (1).pdf"})

    with make_client(handler) as nomi:
        attachment = nomi.upload_expense_attachment(
            "e1", "receipt (1).pdf", b"%PDF-1", "application/pdf", "k"
        )
    assert seen[0].method == "PUT"
    assert seen[0].url.raw_path == b"/api/v1/expenses/e1/attachments/receipt%20%281%29.pdf"
    assert seen[0].content == b"%PDF-1"
    assert seen[0].headers["Content-Type"] == "application/pdf"
    assert attachment.filename == "receipt (1).pdf"


def test_memory_stays_flat_while_streaming_50000_suppliers() -> None:
    import tracemalloc

    page_size, total = 1000, 50_000
    template = json.dumps(supplier(0))

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        start = (page - 1) * page_size
        rows = ",".join(
            template.replace('"s0"', f'"s{i}"') for i in range(start, min(start + page_size, total))
        )
        envelope = (
            '"pagination": {"page": %d, "page_count": 50}, "server_time": "2026-02-01T00:00:00Z"'
        )
        body = "{" + f'"items": [{rows}], ' + envelope % page + "}"
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "application/json"}
        )

    with make_client(handler) as nomi:
        tracemalloc.start()
        count = sum(1 for _ in nomi.iter_suppliers(page_size=page_size))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == total
    # One page of 1000 rows (raw JSON and models) is a few MB; 50 pages held would be far more.
    assert peak < 30 * 1024 * 1024
