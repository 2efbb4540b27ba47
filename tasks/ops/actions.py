"""Tasks of the ops flows (flows/ops/): the CLI's library calls, one thin task per action.

Each task opens one write session, calls the same ``connector.admin`` or ``connector.items``
function the ``nomi-connector`` command calls, and commits. What the library refuses (a user who
may not, a name that names nothing, a bad value or file) becomes ``ActionRefusedError``: one
readable line, no traceback chain, and no retry (``retries=0``: asking again cannot fix it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from connector.access import PermissionDeniedError
from connector.admin.businesses import get_business
from connector.admin.connection_settings import (
    BOOL_SETTINGS,
    TAX_SETTINGS,
    get_settings,
    set_settings,
)
from connector.admin.contact_rules import add_rule, remove_rule
from connector.admin.lookup import label_of, labels
from connector.admin.members import add_member
from connector.admin.payment_methods import (
    add_payment_method,
    get_payment_method,
    link_payment_method,
    remove_payment_method,
)
from connector.admin.users import get_actor, get_user
from connector.errors import NotConnectedError
from connector.history.keys import artifact_key
from connector.items.choices import reassess_after_change
from connector.items.edits import EditResult, edit_item
from connector.items.import_report import IntakeError
from connector.items.intake import import_items
from connector.rules.vocabulary import ItemStatus, ListName
from connector.store.models import Business
from connector.text_guard import printable
from tasks.events import emit_items_ready, emit_items_ready_on_commit
from tasks.runtime import db

T = TypeVar("T")

#: What the library raises when the user must change something (never worth a retry).
REFUSALS: tuple[type[Exception], ...] = (
    ValueError,
    LookupError,
    PermissionDeniedError,
    IntakeError,
)
#: Refused import rows the failure message names (the artifact lists them all).
NAMED_ROW_ERRORS = 5


class ActionRefusedError(Exception):
    """An ops action the connector refused: who may not, what names nothing, a bad value."""


@contextmanager
def refusals_as_one_line() -> Iterator[None]:
    """Turn a library refusal into ``ActionRefusedError`` with its message, unchained."""
    try:
        yield
    except REFUSALS as exc:
        raise ActionRefusedError(printable(str(exc))) from None


def _write(database_url: str, call: Callable[[Session], T]) -> T:
    """``call`` in a write session committed on success; refusals become one line."""
    with refusals_as_one_line(), db(database_url, write=True) as session:
        return call(session)


def _told(message: str) -> str:
    """The message, also logged for the run."""
    get_run_logger().info(message)
    return message


def _reassessed(session: Session, business: Business, source: str) -> str:
    """Reassess after a change (the CLI's ``reassess``) in words; then ``nomi.items.ready``."""
    try:
        report, retried = reassess_after_change(session, business.id)
    except NotConnectedError:
        return ""  # assessed once the business is connected and its lists mirrored
    emit_items_ready_on_commit(session, business.slug, len(report.became_ready) + retried, source)
    return f" ({retried} item(s) Nomi had rejected will be published again)" if retried else ""


# --- connection settings ----------------------------------------------------------------------


@task(cache_policy=NO_CACHE, retries=0, task_run_name="read-settings-{business}")
def read_connection_settings(database_url: str, business: str) -> dict[str, str]:
    """The business's connection settings as people read them (tax defaults by code and name)."""
    with refusals_as_one_line(), db(database_url, write=True) as session:
        target = get_business(session, business)
        settings = get_settings(session, target)
        taxes = labels(session, target, ListName.TAX_RATES)
        shown = {key: "on" if getattr(settings, key) else "off" for key in BOOL_SETTINGS}
        for key in TAX_SETTINGS:
            nomi_id = getattr(settings, key)
            shown[key] = taxes.get(nomi_id, nomi_id) if nomi_id else "not set"
        return shown


@task(cache_policy=NO_CACHE, retries=0, task_run_name="change-settings-{business}")
def change_connection_settings(
    database_url: str, business: str, acting_user: str, changes: Mapping[str, str]
) -> str:
    """Change settings as the acting user (``set_settings``: admins and accountants; audited)."""

    def change(session: Session) -> str:
        target = get_business(session, business)
        actor = get_actor(session, acting_user, business=target, action="settings.set")
        set_settings(session, business=target, actor=actor, changes=dict(changes))
        return f"updated {', '.join(changes)} for {target.slug}" + _reassessed(
            session, target, "settings"
        )

    return _told(_write(database_url, change))


def publish_settings_artifact(business: str, before: dict[str, str], after: dict[str, str]) -> None:
    """The artifact ``connection-settings-<business>``: each setting, before and now."""
    lines = [
        f"# {business}: connection settings",
        "",
        "| setting | before this run | now |",
        "|---|---|---|",
    ]
    for key, now in after.items():
        was = before.get(key, "-")
        mark = " **(changed)**" if was != now else ""
        lines.append(f"| `{key}` | {_cell(was)} | {_cell(now)}{mark} |")
    create_markdown_artifact(
        "\n".join(lines) + "\n",
        key=artifact_key("connection-settings", business),
        description=f"Connection settings of {business}",
    )


# --- rules, payment methods, members ------------------------------------------------------------


@task(cache_policy=NO_CACHE, retries=0, task_run_name="set-{kind}-rule-{business}")
def set_contact_rule(
    database_url: str,
    business: str,
    acting_user: str,
    kind: str,
    name: str,
    fields: Mapping[str, Any],
    payment_method: str,
) -> str:
    """Create or replace a supplier or customer rule (``add_rule``; admins only; audited)."""

    def change(session: Session) -> str:
        target = get_business(session, business)
        method = get_payment_method(session, target, payment_method) if payment_method else None
        add_rule(
            session,
            business=target,
            actor=get_actor(session, acting_user, business=target, action="rules.add"),
            kind=kind,
            name=name,
            payment_method_id=method.id if method else None,
            **fields,
        )
        return f"{kind} rule for {name!r} saved" + _reassessed(session, target, "rules")

    return _told(_write(database_url, change))


@task(cache_policy=NO_CACHE, retries=0, task_run_name="remove-{kind}-rule-{business}")
def remove_contact_rule(
    database_url: str, business: str, acting_user: str, kind: str, name: str
) -> str:
    """Remove a user rule for a supplier or customer (``remove_rule``; admins only; audited)."""

    def change(session: Session) -> str:
        target = get_business(session, business)
        actor = get_actor(session, acting_user, business=target, action="rules.remove")
        remove_rule(session, business=target, actor=actor, kind=kind, name=name)
        return f"{kind} rule for {name!r} removed" + _reassessed(session, target, "rules")

    return _told(_write(database_url, change))


@task(cache_policy=NO_CACHE, retries=0, task_run_name="{action}-payment-method-{business}")
def change_payment_method(
    database_url: str,
    business: str,
    acting_user: str,
    action: str,
    name: str,
    bank_account: str,
) -> str:
    """Add, link or remove a payment method (admins and accountants only; audited)."""

    def change(session: Session) -> str:
        target = get_business(session, business)
        actor = get_actor(session, acting_user, business=target, action=f"payment_methods.{action}")
        if action == "remove":
            remove_payment_method(session, business=target, actor=actor, name=name)
            return f"payment method {name!r} removed"
        call = add_payment_method if action == "add" else link_payment_method
        method = call(
            session,
            business=target,
            actor=actor,
            name=name,
            bank_account_nomi_id=bank_account if bank_account.strip() else None,
        )
        bank = label_of(session, target, ListName.BANK_ACCOUNTS, method.bank_account_nomi_id)
        linked = f"paid from bank account {bank}" if bank else "linked to no bank account"
        if action == "add":
            return f"payment method {method.name!r} added, {linked}"
        return f"payment method {method.name!r} {linked}" + _reassessed(
            session, target, "payment-method"
        )

    return _told(_write(database_url, change))


@task(cache_policy=NO_CACHE, retries=0, task_run_name="add-member-{business}")
def add_business_member(
    database_url: str, business: str, user: str, role: str, acting_user: str
) -> str:
    """Give a user a role in a business (``add_member``; an admin or accountant acts; audited)."""

    def change(session: Session) -> str:
        target = get_business(session, business)
        actor = get_actor(session, acting_user, business=target, action="members.add")
        member = add_member(
            session, business=target, user=get_user(session, user), role=role, actor=actor
        )
        return f"{user} is {member.role} of {target.slug}"

    return _told(_write(database_url, change))


# --- items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    """What one import did, in words (``errors``: every refused row's ``line N, field: why``)."""

    file: str
    rows: int
    imported: int
    already_present: int
    refused: int
    errors: list[str] = field(default_factory=list)
    unlisted: int = 0


def inbox_file(home: Path, business: str, file: str) -> Path:
    """The file an import names: an absolute path as it is, else ``<home>/inbox/<business>/<file>``.

    Raises:
        ActionRefusedError: A relative name that leaves the business's inbox folder.
    """
    given = Path(file.strip())
    if given.is_absolute():
        return given
    inbox = (home / "inbox" / business.strip().lower()).resolve()
    path = (inbox / given).resolve()
    if not path.is_relative_to(inbox) or not file.strip():
        raise ActionRefusedError(
            f"{printable(file)!r} is not a file name in the inbox folder {inbox}: give the name "
            "of a file there, or an absolute path the worker can read"
        )
    return path


@task(cache_policy=NO_CACHE, retries=0, task_run_name="import-items-{business}")
def import_items_file(
    database_url: str,
    business: str,
    acting_user: str,
    path: Path,
    images_dir: Path,
    *,
    keep_good_rows: bool = False,
) -> ImportSummary:
    """Import a CSV or JSON Lines file (``import_items``; any member; audited).

    Nothing is written when a row is refused, unless ``keep_good_rows`` (the CLI's way).
    """
    with refusals_as_one_line(), db(database_url) as session:
        target = get_business(session, business)
        slug = target.slug  # read now: the import's own transactions may expire the row
        session.commit()  # the import takes its own short write transactions
        report = import_items(
            session,
            path,
            business_id=target.id,
            actor_email=acting_user,
            images_dir=images_dir,
            whole_file=not keep_good_rows,
        )
    emit_items_ready(slug, report.ready, "import")  # its chunks are committed
    summary = ImportSummary(
        file=path.name,
        rows=report.rows,
        imported=len(report.imported),
        already_present=len(report.duplicates),
        refused=report.refused,
        errors=[printable(str(error)) for error in report.errors],
        unlisted=report.unlisted,
    )
    get_run_logger().info(
        "%s: imported %d, already present %d, refused %d of %d rows",
        summary.file,
        summary.imported,
        summary.already_present,
        summary.refused,
        summary.rows,
    )
    return summary


def refused_rows_message(summary: ImportSummary) -> str:
    """One line naming the refused rows (line and field), the first ``NAMED_ROW_ERRORS``."""
    named = "; ".join(summary.errors[:NAMED_ROW_ERRORS])
    more = len(summary.errors) + summary.unlisted - NAMED_ROW_ERRORS
    rest = f"; and {more} more problem(s) (artifact)" if more > 0 else ""
    if not summary.imported and not summary.already_present:
        written = "nothing was imported"
    else:
        written = (
            f"the other rows were kept ({summary.imported} imported, "
            f"{summary.already_present} already present)"
        )
    return (
        f"{summary.file}: {summary.refused} of {summary.rows} row(s) refused and {written}: "
        f"{named}{rest}"
    )


def publish_import_artifact(business: str, summary: ImportSummary) -> None:
    """The artifact ``import-<business>``: the counts and every refused row."""
    lines = [
        f"# {business}: import of {summary.file}",
        "",
        f"{summary.rows} row(s): **{summary.imported} imported**, {summary.already_present} "
        f"already present, **{summary.refused} refused**.",
    ]
    if summary.errors:
        lines += ["", "| refused row | field: why |", "|---|---|"]
        for error in summary.errors:
            where, _, why = error.partition(", ")
            lines.append(f"| {_cell(where)} | {_cell(why)} |")
    if summary.unlisted:
        lines.append(f"\n... and {summary.unlisted} more problem(s) not listed.")
    create_markdown_artifact(
        "\n".join(lines) + "\n",
        key=artifact_key("import", business),
        description=f"Last import of items for {business}",
    )


@task(cache_policy=NO_CACHE, retries=0, task_run_name="edit-item-{business}-{external_id}")
def edit_one_item(
    database_url: str,
    business: str,
    acting_user: str,
    external_id: str,
    changes: Mapping[str, str],
) -> EditResult:
    """Set or clear an item's category or tax rate (``edit_item``; any member; audited)."""

    def change(session: Session) -> EditResult:
        target = get_business(session, business)
        done = edit_item(session, business=target, external_id=external_id,
                         actor_email=acting_user, changes=changes)  # fmt: skip
        emit_items_ready_on_commit(session, target.slug, done.status == ItemStatus.READY, "edit")
        return done

    result = _write(database_url, change)
    _told(f"{result.external_id}: {result.status}; category {result.category or '-'}, "
          f"tax rate {result.tax_rate or '-'}")  # fmt: skip
    return result


def _cell(text: str) -> str:
    """Text for one markdown table cell (no pipe or line break splits it)."""
    return text.replace("|", "/").replace("\n", " ")
