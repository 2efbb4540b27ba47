"""What tasks need from outside: the connector database and a Nomi client for one connection.

Flows load settings and blocks once at the edge (``ConnectorSettings()``, ``NomiApp.load(...)``) and
pass them into tasks; tasks call these helpers to turn them into an engine or a client. Engines are
cached per process and URL (one pool per worker process, shared by its task threads). What
started a flow run (schedule, automation or person) is read from Prefect's runtime here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar, cast

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.tasks import Task
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.tokens import BlockTokenProvider
from connector.errors import UnknownBusinessError
from connector.rules.vocabulary import RunTrigger
from connector.store.db import make_engine
from connector.store.db import session as db_session
from connector.store.models import Business, Connection
from nomi.client import NomiClient
from nomi.retry import RetryPolicy
from nomi.throttle import throttle_for

DEFAULT_APP_BLOCK = "nomi"
T = TypeVar("T")

RetryCondition = Callable[[Task[..., Any], TaskRun, State[Any]], bool]


def retry_on(*errors: type[BaseException]) -> RetryCondition:
    """A ``retry_condition_fn`` retrying a task run only when it failed with one of ``errors``.

    Anything else (a refusal, a bug, a cancelled run) is final: retrying cannot fix it.
    """

    def condition(_task: Task[..., Any], _task_run: TaskRun, state: State[Any]) -> bool:
        try:
            state.result()
        except errors:
            return True
        except Exception:
            return False
        return False

    condition.__name__ = f"retry_on_{'_'.join(e.__name__ for e in errors)}"
    return condition


class NomiLimits(BaseModel):
    """Nomi's per-tenant limits the connector keeps under by itself (Nomi: 60/min, 5 concurrent)."""

    per_minute: int = Field(60, ge=0, description="Requests per minute per organisation (0 = off).")
    concurrent: int = Field(5, ge=0, description="Requests in flight per organisation (0 = off).")


@lru_cache(maxsize=8)
def engine_for(database_url: str) -> Engine:
    """The process-wide engine of the connector database at ``database_url``."""
    return make_engine(database_url)


@contextmanager
def db(database_url: str, *, write: bool = False) -> Iterator[Session]:
    """A session on the connector database: committed on success, rolled back on error.

    Args:
        database_url: The connector database.
        write: The session reads and then writes (see ``connector.store.db.session``): on SQLite
        each
            of its transactions starts as a write.
    """
    with db_session(engine_for(database_url), write=write) as session:
        yield session


def credentials_block_name(business_slug: str) -> str:
    """Name of the `NomiCredentials` block of one business's connection."""
    return f"nomi-credentials-{business_slug}"


def unwalked(value: T) -> T:
    """``value`` as a task parameter Prefect passes on without walking it for futures (``quote``).

    A business's summary holds a row per item and the publish task's id lists an id per item:
    walking them (twice per task run) was ~6% of the publishing process's CPU in the publish
    benchmark.
    """
    return cast(T, quote(value))


def load_credentials(app: NomiApp, connection: Connection) -> None:
    """Load the connection's credentials block now, in the calling task's own thread.

    There ``get_client`` hands back the run's Prefect client; a batch's publishing threads have
    none, and the first of them to need a token would open a new Prefect client for the read
    (~65 ms of CPU, most of it loading the CA bundle). Loaded here, they find it cached.

    Raises:
        ValueError: The connection is not connected, or its block does not exist.
    """
    _, block_name = _connected(connection)
    BlockTokenProvider(block_name, app).credentials()


def _connected(connection: Connection) -> tuple[str, str]:
    """The connection's Nomi tenant id and credentials block name.

    Raises:
        ValueError: It was never connected (no tenant or no credentials block).
    """
    if not connection.nomi_tenant_id or not connection.credentials_block_name:
        raise ValueError(f"connection {connection.id} is not connected to a Nomi organisation")
    return connection.nomi_tenant_id, connection.credentials_block_name


def nomi_client(
    app: NomiApp,
    connection: Connection,
    *,
    limits: NomiLimits | None = None,
    retry: RetryPolicy | None = None,
) -> NomiClient:
    """A client acting for the connection's organisation, with the tenant's shared throttle.

    Args:
        app: The `NomiApp` block, loaded once by the flow.
        connection: A connected connection (tenant id and credentials block set).
        limits: Nomi's per-tenant limits to stay under.
        retry: The client's own retry bounds.

    Returns:
        A `NomiClient` (use it as a context manager).

    Raises:
        ValueError: The connection has no tenant or credentials block (never connected).
    """
    tenant_id, block_name = _connected(connection)
    limits = limits or NomiLimits()
    tokens = BlockTokenProvider(block_name, app)
    throttle = throttle_for(tenant_id, per_minute=limits.per_minute, concurrent=limits.concurrent)
    return NomiClient(app.api_base_url, tenant_id, tokens, throttle=throttle, retry=retry)


def business_and_connection(
    session: Session, business_slug: str
) -> tuple[Business, Connection | None]:
    """Load a business by slug, with its connection if it has one.

    Raises:
        UnknownBusinessError: No business has this slug.
    """
    business = session.exec(select(Business).where(Business.slug == business_slug)).first()
    if business is None:
        raise UnknownBusinessError(f"no business with slug {business_slug!r}")
    connection = session.exec(
        select(Connection).where(Connection.business_id == business.id)
    ).first()
    return business, connection


def business_ids(session: Session, business_slug: str | None) -> list[uuid.UUID]:
    """One business's id, or every business's id when ``business_slug`` is None."""
    if business_slug is not None:
        return [business_and_connection(session, business_slug)[0].id]
    return list(session.exec(select(Business.id).order_by(Business.slug)))


def run_param(name: str) -> Any:
    """A field of the running flow's ``params`` parameter (a dict or a model), or None."""
    params = flow_run.parameters.get("params") or {}
    return params.get(name) if isinstance(params, dict) else getattr(params, name, None)


def business_run_name(prefix: str, *, default: str = "all") -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<prefix>-<business slug>`` (``default`` when none)."""

    def name() -> str:
        return f"{prefix}-{run_param('business') or default}"

    return name


#: Prefect's ``created_by.type`` of a run an automation (or a deployment trigger) created.
CREATED_BY_AUTOMATION = "AUTOMATION"
#: The tag Prefect's scheduler puts on the runs it creates from a deployment's schedules.
AUTO_SCHEDULED_TAG = "auto-scheduled"


def trigger_of(
    *, auto_scheduled: bool, created_by: str | None, tags: list[str], reconnect: bool = False
) -> RunTrigger:
    """What started a run, from what Prefect knows of it (``reconnect``: a reconnect's follow-up).

    An automation's run is ``automation``; a run the scheduler made is ``schedule``; any other
    (a Custom or Quick run in the UI, ``prefect deployment run``, the API, a test) is ``person``.
    """
    if reconnect:
        return RunTrigger.RECONNECT
    if created_by == CREATED_BY_AUTOMATION:
        return RunTrigger.AUTOMATION
    if auto_scheduled or AUTO_SCHEDULED_TAG in tags:
        return RunTrigger.SCHEDULE
    return RunTrigger.PERSON


def run_trigger(*, after_reconnect: bool = False) -> RunTrigger:
    """What started the flow run this code runs in: its root run's trigger, for a subflow.

    ``after_reconnect`` on a subflow (reconnect-to-nomi publishing what waited) is ``reconnect``.
    Outside a flow run (a plain call) the trigger is ``person``.
    """
    run_id: Any = flow_run.id
    if not run_id:
        return RunTrigger.PERSON
    parent: Any = flow_run.parent_flow_run_id
    root: Any = flow_run.root_flow_run_id if parent else run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(str(root or run_id)))
    return trigger_of(
        auto_scheduled=bool(run.auto_scheduled),
        created_by=run.created_by.type if run.created_by else None,
        tags=list(run.tags or []),
        reconnect=after_reconnect and bool(parent),
    )
