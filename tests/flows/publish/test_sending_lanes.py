"""Batches send in lanes: as many at once as fill the process's cap on Nomi requests in flight."""

from __future__ import annotations

import threading

from nomi.throttle import PROCESS_IN_FLIGHT
from tasks.publish import sending_lane


def test_as_many_batches_send_at_once_as_their_concurrency_fills_the_cap() -> None:
    lanes = sending_lane(5)
    assert lanes is sending_lane(5)  # one set of lanes per process and concurrency
    assert _all_free(lanes, PROCESS_IN_FLIGHT // 5)


def test_a_concurrency_above_the_cap_still_gets_one_lane() -> None:
    lanes = sending_lane(PROCESS_IN_FLIGHT + 1)
    assert lanes.acquire(blocking=False)
    try:
        assert not lanes.acquire(blocking=False)
    finally:
        lanes.release()


def test_a_batch_gives_its_lane_back_once_early_or_at_its_end() -> None:
    from tasks.publish import HeldLane

    lanes = sending_lane(5)
    free = PROCESS_IN_FLIGHT // 5
    with HeldLane(lanes) as lane:
        assert not _all_free(lanes, free)
        lane.release()  # its last item started: the next batch may send
        assert _all_free(lanes, free)
        lane.release()  # a second release gives nothing back twice
    assert _all_free(lanes, free)  # nor does the end of the batch (BoundedSemaphore would raise)
    with HeldLane(lanes):
        assert not _all_free(lanes, free)
    assert _all_free(lanes, free)


def _all_free(lanes: threading.BoundedSemaphore, count: int) -> bool:
    """Exactly ``count`` lanes can be taken now, no more (each is given back at once)."""
    taken = 0
    while taken < count + 1 and lanes.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        lanes.release()
    return taken == count
