"""Kinds of review reasons: a reason's text without the names in it (no pandas here).

The business overview, rewritten after every publish run, groups waiting items by kind; the
run-history report groups its reasons the same way. Kept apart from the report's pandas
transforms so a publish run's process does not import pandas to name a kind.
"""

from __future__ import annotations

import re

#: A quoted name in a review reason: from a quote to the quote that ends it (followed by a space,
#: a colon, a bracket, a comma, a full stop or the end), so "O'Brien's" stays one name.
_QUOTED = re.compile(r"'.*?'(?=[\s:),.]|$)")
_BRACKETED = re.compile(r"\s*\([^)]*\)")


def reason_kind(reason: str) -> str:
    """The kind of a review reason: its text before the first colon, without the names in it.

    ``"no category: set one on the item or add a supplier rule for 'Acme'"`` is ``no category``;
    ``"new supplier 'Acme' is not in Nomi: confirm ..."`` is ``new supplier is not in Nomi``;
    ``"category 'Travel' (from the supplier rule for 'Acme') is archived in Nomi: ..."`` is
    ``category is archived in Nomi``. The names are shown in their own column instead.
    """
    head = _QUOTED.sub("", reason).split(":", 1)[0]  # names first: one may hold a colon
    kind = _BRACKETED.sub("", head)
    return " ".join(kind.split()) or " ".join(reason.split())
