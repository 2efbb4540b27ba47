"""Names, not ids, in imported items: the category and tax rate an intake file gives by code,
name or Nomi id, resolved when the item is assessed (``docs/intake.md``, "Categories and tax
rates by code or name").

``connector.admin.lookup.find_entry`` finds the entry, as for item edits. A name that resolves is
stored as its Nomi id (``category_edit``, ``tax_rate_edit``, and the same keys of each line), so
publishing reads ids only; one that does not stays as given and holds the item, its reason
naming the close matches.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session as ModelSession

from connector.admin.lookup import NameLookupError, UnknownNameError, find_entry
from connector.rules.facts import ItemFacts, Resolution, RulesContext
from connector.rules.vocabulary import ItemStatus, ListName
from connector.store.base import table_of
from connector.store.models import Business, Item

#: Field of the facts -> (stored key, mirrored list, what it is called in reasons).
_FIELDS = {
    "category_id": ("category_edit", ListName.CATEGORIES, "category"),
    "tax_rate_id": ("tax_rate_edit", ListName.TAX_RATES, "tax rate"),
}
_MISSING = "does not exist in Nomi: choose another"


class ItemNames:
    """The names of one assessment's items, each looked up once (``find_entry``)."""

    def __init__(self, session: Session, business_id: uuid.UUID, ctx: RulesContext) -> None:
        self.session = session
        self.business_id = business_id
        self._known: dict[ListName, Callable[[str], Any]] = {
            ListName.CATEGORIES: ctx.category,
            ListName.TAX_RATES: ctx.tax_rate,
        }
        self._found: dict[tuple[ListName, str], str | NameLookupError] = {}
        self._lookup: ModelSession | None = None
        self._business: Business | None = None
        #: The stored values to write back (``b_id`` and the columns), per renamed item.
        self.renamed: list[dict[str, Any]] = []

    def facts(self, row: Any, facts: ItemFacts) -> tuple[ItemFacts, list[tuple[str, str, Any]]]:
        """``facts`` with the Nomi ids the item's names give, and the names that give none
        (what each is called, the text, the lookup's error) for ``explain``."""
        failed: list[tuple[str, str, Any]] = []
        item = self._ids(facts, failed)
        lines = tuple(self._ids(line, failed) for line in facts.lines)
        if item == {} and all(not changed for changed in lines):
            return facts, failed
        stored: dict[str, Any] = {
            "b_id": row.id,
            "v_category_edit": item.get("category_id", row.category_edit),
            "v_tax_rate_edit": item.get("tax_rate_id", row.tax_rate_edit),
            "v_lines": [
                old | {_FIELDS[k][0]: v for k, v in changed.items()}
                for old, changed in zip(row.lines or (), lines, strict=True)
            ],
        }
        self.renamed.append(stored)
        renamed = [
            dataclasses.replace(line, **changed)
            for line, changed in zip(facts.lines, lines, strict=True)
        ]
        return dataclasses.replace(facts, **item, lines=tuple(renamed)), failed

    def _ids(self, facts: Any, failed: list[tuple[str, str, Any]]) -> dict[str, Any]:
        """The facts' fields (``category_id``, ``tax_rate_id``) whose text names another id."""
        changed: dict[str, Any] = {}
        for field, (_, list_name, called) in _FIELDS.items():
            text = getattr(facts, field)
            if text is None or self._known[list_name](text) is not None:
                continue
            found = self._find(list_name, text)
            if isinstance(found, str):
                changed[field] = found
            else:
                failed.append((called, text, found))
        return changed

    def _find(self, list_name: ListName, text: str) -> str | NameLookupError:
        key = (list_name, text)
        if key not in self._found:
            if self._lookup is None:
                bind = self.session if isinstance(self.session, ModelSession) else None
                self._lookup = bind or ModelSession(bind=self.session.connection())
                self._business = self._lookup.get(Business, self.business_id)
            assert self._business is not None  # the business of the items being assessed
            try:
                self._found[key] = find_entry(self._lookup, self._business, list_name, text).nomi_id
            except NameLookupError as exc:
                self._found[key] = exc
        return self._found[key]

    def write(self) -> None:
        """Store the ids found (guarded as every assessment write: review or ready only)."""
        if not self.renamed:
            return
        table = table_of(Item)
        columns = ("category_edit", "tax_rate_edit", "lines")
        statement = (
            sa.update(table)
            .where(
                table.c.id == sa.bindparam("b_id"),
                sa.or_(*(table.c.status == s.value for s in (ItemStatus.REVIEW, ItemStatus.READY))),
            )
            .values({c: sa.bindparam(f"v_{c}") for c in columns})
        )
        self.session.connection().execute(statement, self.renamed)
        for values in self.renamed:
            loaded = self.session.identity_map.get(identity_key(Item, values["b_id"]))
            if loaded is not None:
                self.session.expire(loaded)


def explain(res: Resolution, failed: list[tuple[str, str, Any]]) -> Resolution:
    """The resolution with each "does not exist in Nomi" reason of a name that resolved to
    nothing saying why: its close matches, or the lookup's own words (ambiguous, archived)."""
    if not failed:
        return res
    reasons = list(res.reasons)
    for called, text, error in failed:
        needle = f"{called} {text!r} ("
        for n, reason in enumerate(reasons):
            if needle not in reason or not reason.endswith(_MISSING):
                continue
            where = reason[: reason.index(needle)]
            if not isinstance(error, UnknownNameError):
                reasons[n] = f"{where}{error}"
            elif error.suggestions:
                reasons[n] = f"{reason} (close matches: {', '.join(error.suggestions)})"
    return dataclasses.replace(res, reasons=tuple(reasons))
