"""Benchmark: auto-publish under Nomi-shaped per-tenant limits (per minute and concurrent).

Prints ``BENCH publish-throttled`` (share of the limit's ceiling sustained) and
``BENCH publish-throttled-429`` (share of requests answered 429), read from the sandbox's request
journal. Method and figures: docs/performance.md.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.publish import prepare, run_flow
from bench.support.harness import bench_line, machine, prefect_server, sandbox_process

TARGET_CEILING, TARGET_429 = 0.95, 0.01
RECORD_PATHS = ("/expenses", "/sales-invoices")


@dataclass
class ThrottledResult:
    """What one throttled run measured."""

    tenants: int
    per_minute: int
    concurrent: int
    windows: int
    accepted_in_windows: int
    requests: int
    rate_limited: int
    published: int
    seconds: float

    @property
    def ceiling(self) -> int:
        """Record creations the limit allows in the measured minutes."""
        return self.tenants * self.per_minute * self.windows

    @property
    def ratio(self) -> float:
        """Accepted creations in the measured minutes over the ceiling."""
        return self.accepted_in_windows / self.ceiling

    @property
    def share_429(self) -> float:
        """API requests answered 429, as a share of all API requests of the run."""
        return self.rate_limited / max(1, self.requests)


def measure(journal: list[dict[str, Any]], windows: int) -> tuple[int, int, int]:
    """(creations accepted in the first ``windows`` minutes, API requests, 429 answers)."""
    api = [e for e in journal if str(e.get("path", "")).startswith("/api/")]
    created = [
        datetime.fromisoformat(str(e["at"]).replace("Z", "+00:00"))
        for e in api
        if e.get("method") == "POST"
        and str(e.get("path", "")).endswith(RECORD_PATHS)
        and 200 <= int(e.get("status") or 0) < 300
    ]
    if not created:
        return 0, len(api), 0
    start = min(created)
    end = start + timedelta(minutes=windows)
    accepted = sum(1 for at in created if at < end)
    limited = sum(1 for e in api if int(e.get("status") or 0) == 429)
    return accepted, len(api), limited


def run(
    *,
    tenants: int = 3,
    per_minute: int = 600,
    concurrent: int = 5,
    windows: int = 2,
    items_per_tenant: int | None = None,
    own_server: bool = True,
) -> ThrottledResult:
    """Set up, run the flow under the limits and read the sandbox's journal.

    Args:
        tenants: Organisations (one business each).
        per_minute: The sandbox's and the client's per-organisation minute limit.
        concurrent: The per-organisation concurrency limit (both sides).
        windows: Whole minutes measured (items default to enough to keep them full).
        items_per_tenant: Items per business (default ``per_minute * windows + per_minute // 10``).
        own_server: Start a local Prefect server.

    Returns:
        The measurements.
    """
    from tasks.runtime import NomiLimits

    per_business = items_per_tenant or per_minute * windows + per_minute // 10
    limits = {
        "per_minute": per_minute,
        "concurrent": concurrent,
        "per_day": 0,
        "app_per_minute": 0,
        "token_per_minute": 0,
    }
    with (
        tempfile.TemporaryDirectory(prefix="nomi-bench-") as folder,
        sandbox_process() as sandbox,
        prefect_server() if own_server else nullcontext(),
    ):
        url, app_block, _ = prepare(
            sandbox,
            Path(folder),
            businesses=tenants,
            items=per_business * tenants,
            limits=limits,
        )
        # The set-up's own requests (list reads) count in the sandbox's current minute window,
        # which the flow's client cannot see: start the measured run in a fresh minute.
        sandbox.admin.post("/clock/advance", json={"seconds": 60}).raise_for_status()
        sandbox.admin.post("/reset-stats").raise_for_status()
        seconds, published, _ = run_flow(
            url, app_block, NomiLimits(per_minute=per_minute, concurrent=concurrent)
        )
        accepted, requests, limited = measure(sandbox.journal(), windows)
    return ThrottledResult(
        tenants=tenants,
        per_minute=per_minute,
        concurrent=concurrent,
        windows=windows,
        accepted_in_windows=accepted,
        requests=requests,
        rate_limited=limited,
        published=published,
        seconds=seconds,
    )


def report(result: ThrottledResult) -> list[str]:
    """The two BENCH lines."""
    return [
        bench_line(
            "publish-throttled",
            result.ratio,
            str(TARGET_CEILING),
            accepted=result.accepted_in_windows,
            ceiling=result.ceiling,
            minutes=result.windows,
            tenants=result.tenants,
            per_minute=result.per_minute,
            concurrent=result.concurrent,
            published=result.published,
            flow_s=f"{result.seconds:.1f}",
        ),
        bench_line(
            "publish-throttled-429",
            result.share_429,
            f"{TARGET_429}(below)",
            answered_429=result.rate_limited,
            requests=result.requests,
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (``python -m bench.publish_throttled [PER_MINUTE [TENANTS]]``)."""
    args = [int(a) for a in (argv or [])]
    result = run(per_minute=args[0] if args else 600, tenants=args[1] if len(args) > 1 else 3)
    print(f"# {machine()}; connector DB: temporary SQLite file; sandbox: own process", flush=True)
    for line in report(result):
        print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
