"""The business's publishing slot when several runs start at the same moment."""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack
from typing import Any

import pytest
from prefect.client.orchestration._concurrency_limits.client import ConcurrencyLimitClient
from prefect.exceptions import ObjectNotFound

from tasks.publish import try_publish_lock

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
