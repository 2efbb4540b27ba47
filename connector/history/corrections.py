"""The history report's corrections and voids per business: asked, voided at Nomi, refused.

Corrections and archives of published items (``connector.admin.corrections``) are asked for in
the audit log (``item.correct`` / ``item.archive``, allowed) and reach Nomi as ``void`` attempts
(``publish_attempts.step = 'void'``): a published one is a record Nomi voided, a rejected one a
void Nomi refused (``period_locked``, ``has_payments``). One SQL pass per table, counted in SQL.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection as SAConnection

from connector.history.queries import (
    PUBLISHED_OUTCOMES,
    ReportWindow,
    business_filter,
    business_slugs,
    raw_id,
    to_frame,
    with_slug,
)
from connector.rules.vocabulary import AttemptOutcome, AttemptStep
from connector.store.base import table_of
from connector.store.history_tables import AuditLog, PublishAttempt

CORRECTION_COLUMNS = ["business", "corrections", "archives", "voided", "refused"]
#: The audit actions a correction and an archive are asked with (allowed rows).
ASKED = {"item.correct": "corrections", "item.archive": "archives"}


def load_corrections(conn: SAConnection, window: ReportWindow) -> pd.DataFrame:
    """Corrections and archives asked, records voided and voids refused, per business.

    Returns:
        ``CORRECTION_COLUMNS``, one row per business with any, by business.
    """
    slugs = business_slugs(conn, window.business)
    audit, pa = table_of(AuditLog).c, table_of(PublishAttempt).c
    asked = (
        sa.select(raw_id(audit.business_id), audit.action, sa.func.count())
        .where(
            audit.action.in_(list(ASKED)),
            audit.allowed.is_(True),
            audit.at >= window.start,
            audit.at < window.end,
            audit.business_id.is_not(None),
            business_filter(audit.business_id, slugs, window),
        )
        .group_by(audit.business_id, audit.action)
    )
    voids = (
        sa.select(raw_id(pa.business_id), pa.outcome, sa.func.count(sa.distinct(pa.item_id)))
        .where(
            pa.step == AttemptStep.VOID,
            pa.outcome.in_([*PUBLISHED_OUTCOMES, AttemptOutcome.REJECTED]),
            pa.at >= window.start,
            pa.at < window.end,
            business_filter(pa.business_id, slugs, window),
        )
        .group_by(pa.business_id, pa.outcome)
    )
    asked_frame = with_slug(to_frame(conn.execute(asked), ["business_id", "what", "n"]), slugs)
    void_frame = with_slug(to_frame(conn.execute(voids), ["business_id", "what", "n"]), slugs)
    asked_frame["what"] = asked_frame["what"].map(ASKED)
    void_frame["what"] = void_frame["what"].map(
        lambda o: "refused" if o == AttemptOutcome.REJECTED else "voided"
    )
    return corrections_table(pd.concat([asked_frame, void_frame], ignore_index=True))


def corrections_table(counts: pd.DataFrame) -> pd.DataFrame:
    """``business, what, n`` rows as one row per business (``CORRECTION_COLUMNS``, zeros filled).

    ``voided`` and ``refused`` count items (an item voided twice in the window counts once per
    outcome: its retries replay one key).
    """
    if counts.empty:
        return pd.DataFrame(columns=CORRECTION_COLUMNS)
    table = counts.pivot_table(
        index="business", columns="what", values="n", aggfunc="sum", fill_value=0, observed=True
    )
    table = table.reindex(columns=CORRECTION_COLUMNS[1:], fill_value=0).astype("int64")
    return table.reset_index().sort_values("business", ignore_index=True)[CORRECTION_COLUMNS]
