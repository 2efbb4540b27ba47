"""The business overview artifact ``overview-<slug>``: rewritten after a business's sync or publish.

The rows and the markdown come from ``connector.admin.overview``; this module only writes the
artifact. A failure to write it is logged, never fails the run that called it.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from sqlmodel import select

from connector.admin.overview import load_overview, overview_markdown
from connector.history.keys import artifact_key
from connector.store.models import Business
from tasks.runtime import db


def write_overview(database_url: str, slug: str) -> bool:
    """Rewrite the business's overview artifact; False (and a warning) when it could not be."""
    try:
        with db(database_url) as session:
            business = session.exec(select(Business).where(Business.slug == slug)).first()
            if business is None:
                return False
            markdown = overview_markdown(load_overview(session, business))
        create_markdown_artifact(
            key=artifact_key("overview", slug),
            markdown=markdown,
            description=f"Overview of {slug}: connection, settings, rules, lists, items waiting",
        )
    except Exception as exc:  # the overview is a view: never fail the sync or publish for it
        get_run_logger().warning("%s: overview not updated (%s: %s)", slug, type(exc).__name__, exc)
        return False
    return True
