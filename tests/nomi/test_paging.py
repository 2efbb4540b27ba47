"""`nomi.paging.ListResult`: raw-body pages validated in one pass, and prefetching."""

from __future__ import annotations

import contextvars
import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from nomi.errors import PaginationError, ServerError
from nomi.models import Supplier
from nomi.paging import ListResult

STAMP = "2026-01-05T09:00:00Z"
WHO = contextvars.ContextVar("who", default="nobody")


def _body(page: int, ids: list[str], *, key: str = "items", page_count: int = 3) -> bytes:
    items = [{"id": i, "name": f"S {i}", "updated_at": "2026-01-01T00:00:00Z"} for i in ids]
    envelope = {
        key: items,
        "server_time": STAMP,
        "pagination": {"page": page, "page_count": page_count},
    }
    return json.dumps(envelope).encode()


def _pages(count: int = 3, size: int = 2) -> dict[int, list[str]]:
    return {p: [f"{p}-{k}" for k in range(size)] for p in range(1, count + 1)}


def test_raw_pages_parse_in_one_pass() -> None:
    """Bytes envelopes give models, the first server time, and stop at the page count."""
    pages = _pages()
    asked: list[int] = []

    def fetch(page: int) -> bytes:
        asked.append(page)
        return _body(page, pages[page], key="data" if page == 2 else "items")

    result = ListResult(Supplier, fetch, page_size=2, max_pages=10)
    got = list(result)
    assert [s.id for s in got] == [i for p in (1, 2, 3) for i in pages[p]]
    assert all(isinstance(s, Supplier) for s in got)
    assert result.server_time == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert asked == [1, 2, 3]


def test_raw_page_that_is_not_an_envelope_is_refused() -> None:
    """A JSON array or a body without items is a PaginationError; a bad record stays a
    validation error naming the field."""
    with pytest.raises(PaginationError, match="not a JSON object"):
        list(ListResult(Supplier, lambda page: b"[]", page_size=2, max_pages=10))
    with pytest.raises(PaginationError, match="without an items array"):
        list(ListResult(Supplier, lambda page: b'{"total": 0}', page_size=2, max_pages=10))
    broken = json.dumps({"items": [{"id": "x", "updated_at": STAMP}]}).encode()
    with pytest.raises(ValidationError, match="name"):
        list(ListResult(Supplier, lambda page: broken, page_size=2, max_pages=10))


def test_prefetch_gives_the_same_pages_in_order_and_carries_context() -> None:
    """Prefetched pages equal the plain ones; the fetcher runs in another thread that sees
    the caller's context variables."""
    pages = _pages(count=5)
    seen: list[tuple[str, str]] = []

    def fetch(page: int) -> bytes:
        seen.append((threading.current_thread().name, WHO.get()))
        return _body(page, pages[page], page_count=5)

    WHO.set("sync")
    plain = [
        [s.id for s in page]
        for page in ListResult(Supplier, fetch, page_size=2, max_pages=10).iter_pages()
    ]
    seen.clear()
    ahead = ListResult(Supplier, fetch, page_size=2, max_pages=10)
    fetched = [[s.id for s in page] for page in ahead.iter_pages(prefetch=1)]
    assert fetched == plain == [pages[p] for p in range(1, 6)]
    assert ahead.pages == 5
    assert {name for name, _ in seen} == {"nomi-prefetch"}
    assert {who for _, who in seen} == {"sync"}


def test_prefetch_raises_errors_after_the_pages_before_them() -> None:
    """A failing page surfaces in the caller after the pages before it were handed over."""
    pages = _pages(count=4)

    def fetch(page: int) -> bytes:
        if page == 3:
            raise ServerError("Nomi answered 503")
        return _body(page, pages[page], page_count=4)

    iterator = ListResult(Supplier, fetch, page_size=2, max_pages=10).iter_pages(prefetch=1)
    handed = [[s.id for s in next(iterator)], [s.id for s in next(iterator)]]
    with pytest.raises(ServerError, match="503"):
        next(iterator)
    assert handed == [pages[1], pages[2]]


def test_closing_a_prefetching_iterator_stops_the_fetching() -> None:
    """Stopping after one page leaves at most a couple of pages fetched and no thread behind."""
    asked: list[int] = []

    def fetch(page: int) -> dict[str, Any] | bytes:
        asked.append(page)
        return _body(page, [f"{page}-a", f"{page}-b"], page_count=1000)

    before = threading.active_count()
    pages = ListResult(Supplier, fetch, page_size=2, max_pages=2000).iter_pages(prefetch=2)
    first = next(pages)
    pages.close()  # type: ignore[attr-defined]
    assert [s.id for s in first] == ["1-a", "1-b"]
    assert len(asked) <= 5  # the one handed over, two waiting, one being handed, one fetching
    assert threading.active_count() == before
