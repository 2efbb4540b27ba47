"""The import-items flow: import a CSV or JSON Lines file of items for one business."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from connector.settings import ConnectorSettings
from flows.ops import BUSINESS_HELP, MEMBER_ACTOR_HELP
from tasks.ops.actions import (
    ActionRefusedError,
    import_items_file,
    inbox_file,
    publish_import_artifact,
    refused_rows_message,
)
from tasks.runtime import business_run_name


class ImportItemsParams(BaseModel):
    """Which file, for which business, and who imports it."""

    business: str = Field(title="Business", description=BUSINESS_HELP)
    acting_user: str = Field(title="Acting user", description=MEMBER_ACTOR_HELP)
    file: str = Field(
        title="File",
        description="A .csv or .jsonl file: its name in the business's inbox folder "
        "(NOMI_CONNECTOR_HOME/inbox/{business}/), or an absolute path the worker can read.",
    )
    keep_good_rows: bool = Field(
        default=False,
        title="Keep the good rows",
        description="Import the good rows even when some are refused (as 'items import' does). "
        "Off: a file with any refused row writes nothing.",
    )


@flow(
    name="import-items",
    flow_run_name=business_run_name("import-items", default="unknown"),
    persist_result=False,
)
def import_items(params: ImportItemsParams) -> str:
    """Import cost items, sales items and expense claims from a file (any member, audited).

    Put the file in the business's inbox folder, `NOMI_CONNECTOR_HOME/inbox/{business}/`, and
    give its name (or give an absolute path the worker can read); docs/intake.md has the format.
    Every row is checked before anything is written. Rows already imported (same external id)
    are skipped, so the same file may be imported again. When any row has a problem **nothing is
    written** and the run **fails** naming the refused rows by line and field (all of them in the
    artifact `import-{business}`): fix them and import the file again. With *Keep the good rows*
    the other rows are imported all the same (the run still fails, naming the refused ones). A
    file that cannot be read, an unknown business or an acting user who is not a member fails
    the run in one line and writes nothing.
    """
    settings = ConnectorSettings()
    path = inbox_file(settings.home, params.business, params.file)
    summary = import_items_file(
        settings.database_url,
        params.business,
        params.acting_user,
        path,
        settings.images_dir,
        keep_good_rows=params.keep_good_rows,
    )
    publish_import_artifact(params.business, summary)
    if summary.refused:
        raise ActionRefusedError(refused_rows_message(summary))
    return (
        f"{summary.file}: imported {summary.imported}, already present "
        f"{summary.already_present} of {summary.rows} row(s)"
    )
