"""The businesses' publishing slots: runs starting at the same moment, sweeps taking many."""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.orchestration._concurrency_limits.client import (
    ConcurrencyLimitAsyncClient,
    ConcurrencyLimitClient,
)
from prefect.exceptions import ObjectNotFound

from blocks.locks import publish_lock_name, take_publish_locks, try_publish_lock

RUNS = 4


def test_runs_started_together_share_the_new_slot_without_failing(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run finds the slot missing and creates it: one holds it, the others skip, none fails.

    A barrier holds each "not found" answer until every run has had one, so all of them go on to
    create the slot at once (the race two runs started together meet on a business's first run).
    """
    slug = f"race-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(RUNS, timeout=30)
    read = ConcurrencyLimitClient.read_global_concurrency_limit_by_name

    def read_together(self: Any, name: str) -> Any:
        try:
            return read(self, name)
        except ObjectNotFound:
            barrier.wait()
            raise

    monkeypatch.setattr(
        ConcurrencyLimitClient, "read_global_concurrency_limit_by_name", read_together
    )
    held: list[bool] = []
    errors: list[BaseException] = []
    stacks = [ExitStack() for _ in range(RUNS)]

    def run(stack: ExitStack) -> None:
        try:
            held.append(try_publish_lock(stack, slug, wait_seconds=0.5))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(stack,)) for stack in stacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for stack in stacks:
        stack.close()

    assert errors == []
    assert sorted(held) == [False] * (RUNS - 1) + [True]


def _active_slots(slugs: list[str]) -> list[int]:
    with get_client(sync_client=True) as client:
        return [
            client.read_global_concurrency_limit_by_name(publish_lock_name(s)).active_slots
            for s in slugs
        ]


def test_free_slots_are_taken_in_one_request_and_given_back_together(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep of businesses no other run publishes takes every slot with one bulk request."""
    slugs = [f"bulk-{uuid.uuid4().hex[:8]}-{n}" for n in range(5)]
    requests: list[list[str]] = []
    acquire = ConcurrencyLimitAsyncClient.increment_concurrency_slots_with_lease

    async def counted(self: Any, names: list[str], *args: Any, **kwargs: Any) -> Any:
        requests.append(list(names))
        return await acquire(self, names, *args, **kwargs)

    monkeypatch.setattr(
        ConcurrencyLimitAsyncClient, "increment_concurrency_slots_with_lease", counted
    )
    with ExitStack() as stack:
        held = take_publish_locks(stack, slugs, wait_seconds=0.5)
        assert held == set(slugs)
        assert _active_slots(slugs) == [1] * len(slugs)
        with ExitStack() as other:  # a second run finds them all taken
            assert take_publish_locks(other, slugs, wait_seconds=0.2) == set()
    assert _active_slots(slugs) == [0] * len(slugs)
    assert sorted(requests[0]) == sorted(publish_lock_name(s) for s in slugs)  # one for all five


def test_a_business_another_run_publishes_is_skipped_and_the_others_are_taken(
    prefect_server: None,
) -> None:
    """The bulk request is refused whole when one slot is taken; the free ones are then taken."""
    slugs = [f"busy-{uuid.uuid4().hex[:8]}-{n}" for n in range(4)]
    with ExitStack() as first:
        assert try_publish_lock(first, slugs[2], wait_seconds=0.5)
        with ExitStack() as second:
            held = take_publish_locks(second, slugs, wait_seconds=0.2)
            assert held == {slugs[0], slugs[1], slugs[3]}
            assert _active_slots(slugs) == [1, 1, 1, 1]
        assert _active_slots(slugs) == [0, 0, 1, 0]
    assert _active_slots(slugs) == [0, 0, 0, 0]


def test_a_sweep_lists_the_slots_a_page_at_a_time_and_creates_only_the_missing(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many businesses: no read per slot (50 took 1.2 s); slots over several pages all found."""
    import blocks.locks
    from blocks.locks import ensure_lock, ensure_locks

    names = [publish_lock_name(f"page-{uuid.uuid4().hex[:8]}-{n}") for n in range(7)]
    with get_client(sync_client=True) as client:
        for name in names[:4]:  # a business published before has its slot
            ensure_lock(name, client)
        reads: list[str] = []
        creates: list[str] = []
        create = ConcurrencyLimitClient.create_global_concurrency_limit

        def counted_create(self: Any, limit: Any) -> Any:
            creates.append(limit.name)
            return create(self, limit)

        monkeypatch.setattr(blocks.locks, "LIMITS_PAGE", 2)  # the 4 existing span pages
        monkeypatch.setattr(
            ConcurrencyLimitClient,
            "read_global_concurrency_limit_by_name",
            lambda self, name: reads.append(name),
        )
        monkeypatch.setattr(
            ConcurrencyLimitClient, "create_global_concurrency_limit", counted_create
        )
        ensure_locks(names, client)
        monkeypatch.undo()
        assert reads == []
        assert sorted(creates) == sorted(names[4:])
        for name in names:
            assert client.read_global_concurrency_limit_by_name(name).limit == 1
