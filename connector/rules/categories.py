"""Which category an item, or one of its lines, publishes with, and whether Nomi accepts it."""

from __future__ import annotations

from connector.rules.draft import Draft, LineScope, kind_words, origin_of
from connector.rules.facts import ContactRule, ItemFacts, RulesContext, Source
from connector.rules.vocabulary import ItemKind


def resolve_category(
    item: ItemFacts,
    user_rule: ContactRule | None,
    ck: str,
    ctx: RulesContext,
    draft: Draft,
    line: LineScope | None = None,
) -> str | None:
    """The category of the item, or of one of its lines (its edit first, then the item's)."""
    sources = draft.sources if line is None else line.sources
    where = "" if line is None else line.prefix
    if line is not None and line.facts.category_id is not None:
        chosen, source = line.facts.category_id, Source.LINE
    elif item.category_id is not None:
        chosen, source = item.category_id, Source.ITEM
    elif user_rule is not None and user_rule.category_id is not None:
        chosen, source = user_rule.category_id, Source.USER_RULE
    else:
        sources["category"] = Source.NONE
        name = (item.contact_name or "").strip()
        hint = f" or add a {ck} rule for '{name}'" if name else ""
        on = "on the line or the item" if line is not None else "on the item"
        draft.reasons.append(f"{where}no category: set one {on}{hint}")
        return None
    sources["category"] = source
    origin = origin_of(source, ck, user_rule.name if user_rule else None)
    category = ctx.category(chosen)
    wanted = "INCOME" if item.kind == ItemKind.SALES else "EXPENSE"
    if category is None:
        draft.reasons.append(
            f"{where}category {chosen!r} ({origin}) does not exist in Nomi: choose another"
        )
    elif not category.active:
        draft.reasons.append(
            f"{where}category '{category.name}' ({origin}) is archived in Nomi: choose another"
        )
    elif category.type.upper() != wanted:
        draft.reasons.append(
            f"{where}category '{category.name}' ({origin}) is not an {wanted.lower()} category "
            f"and cannot be used on {kind_words(item.kind, item.document_type)}"
        )
    else:
        return chosen
    return None
