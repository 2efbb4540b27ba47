"""The scratch state of one resolution, and the words that say where a value came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.rules.facts import ContactRule, LineFacts, Source
from connector.rules.vocabulary import DocumentType, ItemKind

_SOURCE_WORDS = {
    Source.ITEM: "set on the item",
    Source.LINE: "set on the line",
    Source.NOMI_SUPPLIER_RULE: "from the Nomi supplier tax rate",
    Source.USER_RULE: "from the rule",
    Source.DEFAULT_ZERO_TAX: "the default tax code for a zero tax amount",
    Source.DEFAULT_TAX: "the default tax",
}


@dataclass
class Draft:
    """Mutable scratch state of one resolution."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


_KIND_WORDS = {
    ItemKind.COST: "a cost item",
    ItemKind.SALES: "a sales item",
    ItemKind.EXPENSE_CLAIM: "an expense claim",
}


_CREDIT_WORDS = {
    ItemKind.COST: "a supplier credit note",
    ItemKind.SALES: "a customer credit note",
    ItemKind.EXPENSE_CLAIM: "an expense claim",
}


def kind_words(kind: str, document_type: str = DocumentType.INVOICE) -> str:
    """How a reason names the item: "a cost item", "a supplier credit note"..."""
    words = _CREDIT_WORDS if document_type == DocumentType.CREDIT_NOTE else _KIND_WORDS
    return words[ItemKind(kind)]


def origin_of(source: Source, contact_kind: str, rule_name: str | None) -> str:
    """Where a value came from, in words: "from the supplier rule for 'Acme'"..."""
    if source == Source.USER_RULE and rule_name:
        return f"from the {contact_kind} rule for '{rule_name}'"
    if source == Source.NOMI_SUPPLIER_RULE and rule_name:
        return f"from the Nomi tax rate of supplier '{rule_name}'"
    return _SOURCE_WORDS.get(source, str(source))


@dataclass
class LineScope:
    """One line being resolved: its facts, number (from 1) and the sources found for it."""

    number: int
    facts: LineFacts
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"line {self.number}: "


@dataclass(frozen=True)
class ItemRules:
    """The contact rules that apply to one item, and the words naming where a rate came from."""

    user: ContactRule | None
    nomi: ContactRule | None
    contact_kind: str

    def origin(self, source: Source) -> str:
        name = (
            self.nomi.name
            if source == Source.NOMI_SUPPLIER_RULE and self.nomi
            else (self.user.name if self.user else None)
        )
        return origin_of(source, self.contact_kind, name)
