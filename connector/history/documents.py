"""The history report's documents: published counts and base-currency totals by document type.

Pure pandas over the ``business_document`` totals of ``connector.history.attempts`` (one SQL pass
that also gives the per-business outcome counts). A total is the sum of the published records'
``base_total`` in the organisation's base currency (credit notes count as their positive totals:
the type column tells them apart). Attempts recorded before migration 0007, or whose amount in
base currency could not be known, have no ``base_total``: they are counted in
``without_base_total`` and their document type or currency reads ``not recorded``, never 0.
"""

from __future__ import annotations

import pandas as pd

#: How an attempt without a recorded document type or base currency is shown.
NOT_RECORDED = "not recorded"
DOCUMENT_COLUMNS = [
    "business",
    "document_type",
    "base_currency",
    "published",
    "base_total",
    "without_base_total",
]


def _labelled(totals: pd.DataFrame) -> pd.DataFrame:
    """``totals`` with a missing document type or base currency named ``NOT_RECORDED``."""
    out = totals.copy()
    for column in ("document_type", "base_currency"):
        out[column] = out[column].astype("object").where(out[column].notna(), NOT_RECORDED)
    return out


def by_document(totals: pd.DataFrame) -> pd.DataFrame:
    """Published records per business, document type and base currency, with their total.

    Args:
        totals: ``business, document_type, base_currency, published, ..., without_base_total,
            base_total`` (``attempts.load_outcome_totals(..., "business_document")``).

    Returns:
        ``DOCUMENT_COLUMNS``: one row per group with a published record, by business then type;
        ``base_total`` rounded to the penny, NaN when none of the group's records has one.
    """
    if totals.empty:
        return pd.DataFrame(columns=DOCUMENT_COLUMNS)
    rows = _labelled(totals[totals["published"] > 0])
    keys = ["business", "document_type", "base_currency"]
    grouped = rows.groupby(keys, as_index=False, observed=True).agg(
        published=("published", "sum"),
        base_total=("base_total", lambda v: v.sum(min_count=1)),
        without_base_total=("without_base_total", "sum"),
    )
    grouped["base_total"] = grouped["base_total"].astype("float64").round(2)
    return grouped[DOCUMENT_COLUMNS].sort_values(keys, ignore_index=True)


def with_base_totals(per_business: pd.DataFrame, documents: pd.DataFrame) -> pd.DataFrame:
    """``per_business`` (``report.by_business``) plus each business's base-currency total.

    Adds ``base_currency`` (``mixed`` when its published records have several, e.g. the
    organisation's base currency changed; ``not recorded`` when none says) and ``base_total``
    (NaN when mixed or not recorded: see the documents table), after ``published``.
    """
    out = per_business.copy()
    if documents.empty:
        out.insert(out.columns.get_loc("published") + 1, "base_currency", pd.NA)
        out.insert(out.columns.get_loc("base_currency") + 1, "base_total", float("nan"))
        return out
    priced = documents[documents["base_currency"] != NOT_RECORDED]
    currencies = priced.groupby("business", observed=True)["base_currency"].agg(
        lambda v: v.iloc[0] if v.nunique() == 1 else "mixed"
    )
    sums = priced.groupby("business", observed=True)["base_total"].sum(min_count=1)
    single = currencies[currencies != "mixed"].index
    currency = out["business"].map(currencies.to_dict())
    unknown = out["business"].isin(documents["business"]) & currency.isna()
    currency = currency.astype("object").where(~unknown, NOT_RECORDED)
    total = out["business"].map(sums[sums.index.isin(single)].to_dict()).astype("float64")
    out.insert(out.columns.get_loc("published") + 1, "base_currency", currency)
    out.insert(out.columns.get_loc("base_currency") + 1, "base_total", total.round(2))
    return out


def base_currency_totals(documents: pd.DataFrame) -> list[tuple[str, float, int]]:
    """The window's published total per base currency: ``(currency, total, without)``.

    ``without``: published records of that currency (or of ``not recorded``) with no total.
    """
    if documents.empty:
        return []
    grouped = documents.groupby("base_currency", observed=True).agg(
        total=("base_total", lambda v: v.sum(min_count=1)),
        without=("without_base_total", "sum"),
    )
    return [
        (str(currency), float(row["total"]), int(row["without"]))
        for currency, row in grouped.sort_index().iterrows()
    ]
