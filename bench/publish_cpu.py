"""Benchmark: CPU per item of our whole side over the plain httpx client's (zero latency).

From the publish benchmark's run (reused when ``python -m bench`` already ran it in this process,
else run first): our side is the flow's process plus the Prefect server (when the benchmark
started its own); the baseline's is the httpx client's process. The sandbox serves both and is
left out of both.

Prints ``BENCH publish-cpu ratio=<our CPU ms per item over the baseline's> target=3(at-most)``.
"""

from __future__ import annotations

from bench.publish import LAST, PublishResult
from bench.publish import run as run_publish
from bench.support.harness import bench_line

TARGET = 3


def cpu_ms(result: PublishResult) -> tuple[float, float]:
    """CPU milliseconds per item: our side (flow + Prefect server), the baseline client's."""
    ours = result.ours_cpu.per_item_ms(result.items)
    base = result.baseline_cpu.per_item_ms(result.items)
    return ours["own"] + ours.get("prefect", 0.0), base["own"]


def report(result: PublishResult) -> str:
    """The BENCH line."""
    ours, base = cpu_ms(result)
    flow = result.ours_cpu.per_item_ms(result.items)
    return bench_line(
        "publish-cpu",
        ours / base if base > 0 else float("inf"),
        f"{TARGET}(at-most)",
        ours_cpu_ms=f"{ours:.2f}",
        ours_flow_cpu_ms=f"{flow['own']:.2f}",
        ours_prefect_cpu_ms=f"{flow.get('prefect', 0.0):.2f}",
        baseline_cpu_ms=f"{base:.2f}",
        items=result.items,
    )


def main() -> None:
    """Report (running the publish benchmark first when this process has not)."""
    result = LAST.get("publish") or run_publish()
    print(report(result), flush=True)


if __name__ == "__main__":
    main()
