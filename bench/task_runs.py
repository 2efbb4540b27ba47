"""Benchmark: Prefect task runs the auto-publish flow creates per 10,000 items published.

Counts the task runs of the publish benchmark's flow run through the Prefect API (``read_task_runs``
filtered by flow run id). Reuses the publish benchmark's run when ``python -m bench`` already ran it
in this process; otherwise runs it (``bench.publish.run``) first.

Prints ``BENCH task-runs ratio=<task runs per 10,000 items> target=200(at-most)``.
"""

from __future__ import annotations

from bench.publish import LAST, PublishResult
from bench.publish import run as run_publish
from bench.support.harness import bench_line

TARGET = 200
PER = 10_000


def per_10k(result: PublishResult) -> float:
    """Task runs of the flow run, scaled to 10,000 items."""
    return result.task_runs * PER / result.items


def report(result: PublishResult) -> str:
    """The BENCH line."""
    return bench_line(
        "task-runs",
        per_10k(result),
        f"{TARGET}(at-most)",
        task_runs=result.task_runs,
        items=result.items,
        businesses=result.businesses,
    )


def main() -> None:
    """Count (running the publish benchmark first when this process has not)."""
    result = LAST.get("publish") or run_publish()
    print(report(result), flush=True)


if __name__ == "__main__":
    main()
