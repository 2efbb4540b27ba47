"""Items by the external id a person knows them by (what the import file and ``items list`` show).

``items_by_external_id`` is what a publish selection or an item edit calls with what a user
typed: exact ids first, then the same id in another case; the ones left are named with close
matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.admin.common import may_be_stored
from connector.errors import NotFoundError
from connector.store.models import Business, Item
from connector.text_guard import shown

#: Characters an external id holds (``items.external_id``).
EXTERNAL_ID_CHARS = 255
#: Unknown ids an error names one by one (with their close matches); the rest are counted.
NAMED = 10
#: Ids one query asks for (SQLite's limit on bound parameters, with room to spare).
_CHUNK = 500


class UnknownItemsError(NotFoundError):
    """Some external ids name no item of the business.

    ``unknown`` lists them as given; ``suggestions`` maps each of the first ``NAMED`` to up to
    five close external ids of the business.
    """

    def __init__(
        self, message: str, *, unknown: Sequence[str], suggestions: dict[str, list[str]]
    ) -> None:
        super().__init__(message)
        self.unknown = list(unknown)
        self.suggestions = suggestions


def items_by_external_id(
    session: Session, business: Business, external_ids: Sequence[str]
) -> list[Item]:
    """The business's items with these external ids, in the order given, each once.

    Each id is trimmed; blanks are skipped. An id matches exactly, or else the one item whose id
    differs from it only in case.

    Args:
        session: A session on the connector database (only read).
        business: The items' business.
        external_ids: External ids as typed (``bs-0001``).

    Returns:
        The items, in the order of their first mention.

    Raises:
        ValueError: No id given (all blank).
        UnknownItemsError: Some ids name no item; the message names them (the first ``NAMED``
            with up to five close matches each) and nothing is returned.
    """
    wanted = list(dict.fromkeys(text.strip() for text in external_ids if text.strip()))
    if not wanted:
        raise ValueError("no item given: name at least one item by its external id")
    storable = [w for w in wanted if may_be_stored(w, limit=EXTERNAL_ID_CHARS)]
    found: dict[str, Item] = {}
    for start in range(0, len(storable), _CHUNK):
        chunk = storable[start : start + _CHUNK]
        query = select(Item).where(
            Item.business_id == business.id, col(Item.external_id).in_(chunk)
        )
        found.update((item.external_id, item) for item in session.exec(query))
    missing = [w for w in storable if w not in found]
    if missing:
        found.update(_by_case(session, business, missing))
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise _unknown(session, business, unknown)
    items: dict[object, Item] = {}  # by id: "BS-1" and "bs-1" may name one item
    for text in wanted:
        items.setdefault(found[text].id, found[text])
    return list(items.values())


def _by_case(session: Session, business: Business, missing: list[str]) -> dict[str, Item]:
    """The items whose external id equals a missing one but for case (only when one does)."""
    lowered: dict[str, list[str]] = {}
    for text in missing:
        lowered.setdefault(text.lower(), []).append(text)
    matches: dict[str, list[Item]] = {}
    keys = list(lowered)
    for start in range(0, len(keys), _CHUNK):
        query = select(Item).where(
            Item.business_id == business.id,
            sa.func.lower(Item.external_id).in_(keys[start : start + _CHUNK]),
        )
        for item in session.exec(query):
            matches.setdefault(item.external_id.lower(), []).append(item)
    return {
        text: items[0]
        for key, items in matches.items()
        if len(items) == 1
        for text in lowered.get(key, [])
    }


def _unknown(session: Session, business: Business, unknown: list[str]) -> UnknownItemsError:
    """The error naming the unknown ids, with close matches among the business's ids."""
    known = list(session.exec(select(Item.external_id).where(Item.business_id == business.id)))
    suggestions = {
        text: difflib.get_close_matches(text, known, n=5, cutoff=0.6) for text in unknown[:NAMED]
    }
    named = [
        shown(text) + (f" (close matches: {', '.join(shown(s) for s in close)})" if close else "")
        for text, close in suggestions.items()
    ]
    more = f" and {len(unknown) - NAMED} more" if len(unknown) > NAMED else ""
    noun = "item" if len(unknown) == 1 else "items"
    return UnknownItemsError(
        f"business '{business.slug}' has no {noun} {', '.join(named)}{more}",
        unknown=unknown,
        suggestions=suggestions,
    )
