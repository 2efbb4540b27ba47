"""Prefect global concurrency limits used as locks: one publishing run per business, one refresh
per connection (``blocks.tokens``), through Prefect's public concurrency API only.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from connector.history.keys import artifact_slug


def lock_busy(exc: ConcurrencySlotAcquisitionError) -> bool:
    """True when a slot acquisition failed only because a peer holds the slot (423 Locked)."""
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


def ensure_lock(name: str, client: SyncPrefectClient | None = None) -> None:
    """Create the global concurrency limit ``name`` (limit 1) unless it exists.

    Two processes that both find it missing both create it; the second is told it exists, which
    is all it wanted. ``client``: an open sync Prefect client to use (one is opened otherwise).
    """
    if client is None:
        with get_client(sync_client=True) as own:
            ensure_lock(name, own)
        return
    try:
        client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        _create_lock(name, client)


def _create_lock(name: str, client: SyncPrefectClient) -> None:
    """Create the limit ``name`` (limit 1); one another process created meanwhile will do."""
    with contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


LIMITS_PAGE = 200
"""Global concurrency limits read per request when ``ensure_locks`` lists them."""
CREATE_THREADS = 8
"""Missing limits ``ensure_locks`` creates at once."""


def ensure_locks(names: list[str], client: SyncPrefectClient) -> None:
    """Create each of the global concurrency limits ``names`` (limit 1) that does not exist.

    A sweep over many businesses lists the server's limits a page at a time (stopping once every
    name was seen) instead of reading each by name: 50 reads one by one took 1.2 s before a
    50-business run published anything. A handful of names are read one by one. A limit missing
    from the listing (or created meanwhile by another process) is created, or found to exist.
    """
    if len(names) <= 3:
        for name in names:
            ensure_lock(name, client)
        return
    missing = set(names)
    offset = 0
    while missing:
        page = client.read_global_concurrency_limits(limit=LIMITS_PAGE, offset=offset)
        missing.difference_update(limit.name for limit in page)
        if len(page) < LIMITS_PAGE:
            break
        offset += LIMITS_PAGE
    # A first sweep of many new businesses creates them all: a few requests at a time.
    with ThreadPoolExecutor(max_workers=CREATE_THREADS, thread_name_prefix="nomi-locks") as pool:
        list(pool.map(lambda name: _create_lock(name, client), sorted(missing)))


def publish_lock_name(slug: str) -> str:
    """The global concurrency limit allowing one publishing run per business."""
    return f"nomi-publish-{artifact_slug(slug)}"


PUBLISH_LOCK_LEASE_SECONDS = 60.0
"""Lease of a business's publishing slot: renewed every 45 s while its run lives; a killed run's
slot is freed by the server's repossessor within this (plus its loop) instead of Prefect's default
300 s, during which every sweep would skip the business. 60 s is the shortest the server accepts."""


def try_publish_lock(stack: ExitStack, slug: str, *, wait_seconds: float) -> bool:
    """Take the business's publishing slot (limit 1, created if missing) for the stack's life.

    The slot is a lease of ``PUBLISH_LOCK_LEASE_SECONDS``. A failed renewal does not stop the run:
    the slot only keeps two runs from competing for Nomi's limits, the claims keep items safe.

    It is tried once per round until ``wait_seconds`` have passed: a client-side
    ``timeout_seconds`` that fires while the server grants the slot leaks the lease in Prefect
    3.9.1, and the business is then skipped ("another run is publishing") by every run for the
    lease's life although no run publishes it.

    Returns:
        False when another run holds it after ``wait_seconds`` (skip the business this run).
    """
    name = publish_lock_name(slug)
    ensure_lock(name)
    return _acquire_waiting(stack, name, wait_seconds=wait_seconds)


def take_publish_locks(stack: ExitStack, slugs: list[str], *, wait_seconds: float) -> set[str]:
    """Take the publishing slots of several businesses for the stack's life; returns whose it holds.

    When every slot is free (the usual sweep) they are all taken in ONE request under one lease,
    renewed and given back together: taking and giving back 50 slots one by one costs several
    seconds of Prefect API calls before the first item is published. The server grants a bulk
    request whole or not at all; when some business is being published by another run, the slots
    are taken one by one instead, all within ``wait_seconds`` together (an on-ready run waiting
    for a sweep or a watching run would otherwise wait that long once per business).

    Returns:
        The slugs whose slot is held (the others are published by another run: skip them).
    """
    if len(slugs) < 2:
        return {s for s in slugs if try_publish_lock(stack, s, wait_seconds=wait_seconds)}
    names = [publish_lock_name(s) for s in slugs]
    with get_client(sync_client=True) as client:
        # Prefect takes only the limits that exist from a bulk request (quietly): make sure
        # every one does before asking.
        ensure_locks(names, client)
    try:
        stack.enter_context(_slots(names))
    except ConcurrencySlotAcquisitionError as exc:
        if not lock_busy(exc):
            raise
        deadline = time.monotonic() + wait_seconds
        return {
            s
            for s in slugs
            if _acquire_waiting(stack, publish_lock_name(s), max(0.0, deadline - time.monotonic()))
        }
    return set(slugs)


def _slots(names: list[str]) -> AbstractContextManager[None]:
    """One try at the slots of ``names`` (all or none), held under one renewed lease."""
    return concurrency(
        names,
        occupy=1,
        max_retries=0,  # one try: a client-side timeout could leak a granted lease
        strict=True,
        lease_duration=PUBLISH_LOCK_LEASE_SECONDS,
        raise_on_lease_renewal_failure=False,
    )


def _acquire_waiting(stack: ExitStack, name: str, wait_seconds: float) -> bool:
    """Try the slot ``name`` once per round until ``wait_seconds`` passed; False if still busy."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.1
    while True:
        try:
            stack.enter_context(_slots([name]))
        except ConcurrencySlotAcquisitionError as exc:
            busy = lock_busy(exc)
            left = deadline - time.monotonic()
            if not busy or left <= 0:
                if busy:
                    return False
                raise
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)
        else:
            return True
