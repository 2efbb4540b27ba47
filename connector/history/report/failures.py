"""Why items failed at Nomi or wait in review: reason kinds, ranked reasons, per supplier."""

from __future__ import annotations

import pandas as pd

from connector.history.reasons import reason_kind

FAILURE_COLUMNS = ["rank", "source", "reason", "count", "businesses", "suppliers", "top_suppliers"]
BY_SUPPLIER_COLUMNS = ["source", "reason", "business", "supplier", "count"]


def _reason_rows(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """``source, reason, business, supplier, count``: one row per failed-attempt group and per
    item in review and reason kind."""
    failed = pd.DataFrame(
        {
            "source": "nomi",
            "reason": failures["error_code"]
            .astype(object)
            .fillna(failures["outcome"].astype(str) + " (no code)")
            .astype(str),
            "business": failures["business"].astype(object),
            "supplier": failures["supplier"].astype(object).fillna("").astype(str),
            "count": failures["attempts"].astype("int64"),
        }
    )
    reviews = pd.DataFrame(
        {
            "source": "review",
            "reason": review_reasons["reason"].astype(str).map(reason_kind),
            "business": review_reasons["business"].astype(object),
            "supplier": review_reasons["supplier"].astype(object).fillna("").astype(str),
            "count": 1,
        }
    )
    frames = [f for f in (failed, reviews) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=BY_SUPPLIER_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    return rows.astype({"count": "int64"})


def failures_by_supplier(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """Failure reasons per business and supplier: ``source, reason, business, supplier, count``,
    highest count first (``supplier`` empty when the item names none)."""
    rows = _reason_rows(failures, review_reasons)
    if rows.empty:
        return pd.DataFrame(columns=BY_SUPPLIER_COLUMNS)
    keys = ["source", "reason", "business", "supplier"]
    grouped = rows.groupby(keys, as_index=False)["count"].sum()
    grouped = grouped.sort_values(
        ["count", *keys], ascending=[False, True, True, True, True], ignore_index=True
    )
    return grouped[BY_SUPPLIER_COLUMNS].astype({"count": "int64"})


def failure_reasons(failures: pd.DataFrame, review_reasons: pd.DataFrame) -> pd.DataFrame:
    """Failure reasons by kind, ranked by how often they occurred.

    Args:
        failures: ``business, outcome, error_code, supplier, attempts`` for failed attempts.
        review_reasons: ``business, supplier, reason`` for the items now in review.

    Returns:
        ``rank, source, reason, count, businesses, suppliers, top_suppliers``: ``source`` is
        ``nomi`` (the error code of failed attempts, ``<outcome> (no code)`` when there was
        none; ``count`` = attempts) or ``review`` (the kind of a review reason of the items now
        in review, see ``reason_kind``; ``count`` = items); ``suppliers`` = how many distinct
        suppliers or customers, ``top_suppliers`` the three most frequent as ``name (count)``.
        Highest count first.
    """
    rows = _reason_rows(failures, review_reasons)
    if rows.empty:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    per_supplier = failures_by_supplier(failures, review_reasons)
    named = per_supplier[per_supplier["supplier"] != ""]
    named = named.groupby(["source", "reason", "supplier"], as_index=False)["count"].sum()
    named = named.sort_values(["count", "supplier"], ascending=[False, True])
    top = pd.DataFrame(
        [
            (
                source,
                reason,
                group["supplier"].nunique(),
                ", ".join(
                    f"{name} ({count})"
                    for name, count in zip(group["supplier"][:3], group["count"][:3], strict=True)
                ),
            )
            for (source, reason), group in named.groupby(["source", "reason"], sort=False)
        ],
        columns=["source", "reason", "suppliers", "top_suppliers"],
    )
    ranked = rows.groupby(["source", "reason"], as_index=False).agg(
        count=("count", "sum"), businesses=("business", "nunique")
    )
    ranked = ranked.merge(top, on=["source", "reason"], how="left")
    ranked["suppliers"] = ranked["suppliers"].fillna(0).astype("int64")
    ranked["top_suppliers"] = ranked["top_suppliers"].fillna("")
    ranked = ranked.sort_values(["count", "source", "reason"], ascending=[False, True, True])
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)[FAILURE_COLUMNS].astype(
        {"count": "int64", "businesses": "int64"}
    )
