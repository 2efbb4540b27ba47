"""Streaming of Nomi's page-numbered lists, one page in memory at a time.

A list is ordered by ``(updated_at, id)``. `ListResult` fetches page after page until a short or
empty page (or the last ``pageCount``), refusing a page that repeats the previous one or a page
number that goes backwards (a server bug would otherwise loop forever). It keeps the
``server_time`` of the **first** page: that is the bookmark for the next incremental sync, fixed
at the start like a signpost, so anything changed while we were paging is fetched again next time.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from nomi.errors import PaginationError

T = TypeVar("T", bound=BaseModel)

#: Fetches one page: ``page number -> JSON envelope``, decoded (a dict) or as the raw body bytes
#: (then the whole page is parsed and validated in one pass, much faster than record by record).
PageFetcher = Callable[[int], dict[str, Any] | bytes]

_DATETIME = TypeAdapter(datetime)
_POLL_SECONDS = 0.1


class _Page(BaseModel, Generic[T]):
    """A list envelope: ``items`` (or ``data``), ``server_time`` and ``pagination``."""

    model_config = ConfigDict(extra="ignore")

    items: list[T] | None = Field(default=None, validation_alias=AliasChoices("items", "data"))
    server_time: datetime | None = None
    pagination: dict[str, Any] | None = None


class ListResult(Generic[T]):
    """An iterable over every record of one list; iterate it once.

    Attributes:
        server_time: Nomi's clock when the first page was served (None until then); bookmark it.
        pages: Pages fetched so far.
        drift_detected: True when a record changed while paging, so rows may have shifted
            between pages and one may have been skipped.
        rescanned: True when drift made the list read once more (rows then come twice).
    """

    def __init__(
        self,
        model: type[T],
        fetch: PageFetcher,
        *,
        page_size: int,
        max_pages: int,
        rescan_on_drift: bool = True,
    ) -> None:
        self._model = model
        self._fetch = fetch
        self._page_size = page_size
        self._max_pages = max_pages
        self._started = False
        self.server_time: datetime | None = None
        self.pages = 0
        self.drift_detected = False
        self.rescanned = False
        self._rescan_on_drift = rescan_on_drift

    def __repr__(self) -> str:
        return f"ListResult({self._model.__name__}, pages={self.pages})"

    def __iter__(self) -> Iterator[T]:
        if self._started:
            raise RuntimeError("a ListResult can be iterated only once")
        self._started = True
        return self._records()

    def iter_pages(self, *, prefetch: int = 0) -> Iterator[list[T]]:
        """Iterate page by page (lists of models) instead of record by record.

        Args:
            prefetch: How many pages may wait, fetched and validated by a background thread,
                while the caller works (0: none, fetch on demand). Memory holds at most
                ``prefetch + 2`` pages. Errors surface in the caller's thread, in page order;
                closing the iterator stops the fetching.

        Returns:
            An iterator of pages (lists of models).
        """
        if self._started:
            raise RuntimeError("a ListResult can be iterated only once")
        self._started = True
        return _prefetched(self._pages(), prefetch) if prefetch > 0 else self._pages()

    def _records(self) -> Iterator[T]:
        for page in self._pages():
            yield from page

    def _pages(self) -> Iterator[list[T]]:
        yield from self._one_pass()
        if self.drift_detected and self._rescan_on_drift:
            # Offsets shifted under us, so a row may have been skipped: read the list once more
            # (rows come twice; callers upsert by id). The bookmark stays the first signpost.
            self.rescanned = True
            yield from self._one_pass()

    def _one_pass(self) -> Iterator[list[T]]:
        previous_ids: list[str] | None = None
        page_number = 1
        while True:
            if page_number > self._max_pages:
                raise PaginationError(f"more than {self._max_pages} pages; stopped")
            items, served, page_count, server_time = self._page(page_number)
            if served < page_number:
                raise PaginationError(f"asked for page {page_number}, got page {served}")
            if self.server_time is None and server_time is not None:
                self.server_time = server_time
            ids = [str(getattr(item, "id", "")) for item in items]
            if items and ids == previous_ids:
                raise PaginationError(f"page {page_number} repeated the previous page")
            self.pages += 1
            if not self.rescanned:
                self._note_drift(items)
            if items:
                yield items
            if not items or len(items) < self._page_size:
                return
            if page_count is not None and page_number >= page_count:
                return
            previous_ids = ids
            page_number += 1

    def _page(self, number: int) -> tuple[list[T], int, int | None, datetime | None]:
        """Fetch one page: its records, served page number, page count and server time."""
        fetched = self._fetch(number)
        if isinstance(fetched, bytes | bytearray):
            return _parse(self._model, fetched, number)
        raw_items, served, page_count = _unpack(fetched, number)
        items = [self._model.model_validate(raw) for raw in raw_items]
        stamp = fetched.get("server_time")
        server_time = _DATETIME.validate_python(stamp) if stamp else None
        return items, served, page_count, server_time

    def _note_drift(self, items: list[T]) -> None:
        """Flag records updated at or after the first page's server time (changed mid-scan)."""
        if self.server_time is None or self.drift_detected:
            return
        for item in items:
            updated = getattr(item, "updated_at", None)
            if isinstance(updated, datetime) and updated >= self.server_time:
                self.drift_detected = True
                return


def _unpack(envelope: dict[str, Any], asked: int) -> tuple[list[Any], int, int | None]:
    """Items, served page number and page count from one envelope."""
    items = envelope.get("items")
    if items is None:
        items = envelope.get("data", [])
    if not isinstance(items, list):
        raise PaginationError("list envelope without an items array")
    pagination = envelope.get("pagination") or {}
    served = pagination.get("page", asked)
    count = pagination.get("page_count", pagination.get("pageCount"))
    return items, int(served), int(count) if count is not None else None


def _parse(
    model: type[T], body: bytes | bytearray, asked: int
) -> tuple[list[T], int, int | None, datetime | None]:
    """Parse and validate a raw envelope in one pass (see `_Page`)."""
    try:
        page = _Page[model].model_validate_json(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        if any(not error["loc"] for error in exc.errors()):
            raise PaginationError("list answer is not a JSON object envelope") from None
        raise
    if page.items is None:
        raise PaginationError("list envelope without an items array")
    pagination = page.pagination or {}
    served = pagination.get("page", asked)
    count = pagination.get("page_count", pagination.get("pageCount"))
    return page.items, int(served), int(count) if count is not None else None, page.server_time


def _prefetched(pages: Iterator[list[T]], depth: int) -> Iterator[list[T]]:
    """Run ``pages`` up to ``depth`` pages ahead in a background thread (context carried over)."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                box.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not hand_over("page", page):
                    return
            hand_over("end", None)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over("error", exc)
        finally:
            pages.close()  # type: ignore[attr-defined]

    context = contextvars.copy_context()
    worker = threading.Thread(
        target=context.run, args=(produce,), name="nomi-prefetch", daemon=True
    )
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()
