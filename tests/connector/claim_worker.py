"""A process that claims Ready items in a loop (used by the concurrent-claim tests)."""

from __future__ import annotations

import uuid
from typing import Any

from connector.publishing.outbox import claim_ready
from connector.store.db import make_engine, session


def claim_until_empty(url: str, business_id: str, start: Any, out: Any, batch: int) -> None:
    """Wait for ``start``, claim batches until none are left, put the claimed ids on ``out``."""
    engine = make_engine(url)
    run_id = uuid.uuid4()
    claimed: list[str] = []
    start.wait(30)
    try:
        while True:
            with session(engine) as db:
                items = claim_ready(
                    db, run_id=run_id, limit=batch, business_id=uuid.UUID(business_id)
                )
                if not items:
                    break
                assert all(i.claimed_by_run == run_id for i in items)
                claimed.extend(str(i.id) for i in items)
    finally:
        engine.dispose()
        out.put((str(run_id), claimed))
