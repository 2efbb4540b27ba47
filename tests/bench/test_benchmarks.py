"""Smoke tests: every benchmark's code runs at a tiny size and prints well-formed BENCH lines.

The sizes say nothing about performance (docs/performance.md holds the measured numbers); they
check that the set-up, both measured sides and the reports work end to end against a real sandbox
process and the session's Prefect server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from bench import (
    duplicates,
    intake,
    publish,
    publish_cpu,
    publish_remote,
    publish_throttled,
    ready_to_nomi,
    sync,
    task_runs,
)
from bench.support.cpu import measure_cpu

LINE = re.compile(r"^BENCH [a-z0-9-]+ ratio=\d+\.\d{3} target=\S+( [a-z_0-9]+=\S+)*$")


def test_publish_benchmark_publishes_every_item_once_and_counts_task_runs(
    prefect_server: None,
) -> None:
    result = publish.run(items=20, businesses=2, own_server=False)

    assert result.published == 20
    # the requests the flow has in flight at most: its batches at 5 each, within the process cap
    assert result.concurrency == min(
        publish.flow_workers() * publish.PER_TENANT_CONCURRENCY, publish.PROCESS_IN_FLIGHT
    )
    assert result.concurrency == 20
    assert result.ours_seconds > 0
    assert result.baseline_seconds > 0
    # recover + one batch per business (it took every Ready item: no empty second batch) + a
    # record per business; counted once the server has recorded them all
    assert result.task_runs == 1 + 2 + 2
    assert LINE.match(publish.report(result))
    assert publish.LAST["publish"] is result
    # Where the CPU went, per side: the sandbox is a child of this process (the session's
    # Prefect server is not, so it is not counted here).
    assert result.ours_cpu.own > 0
    assert result.baseline_cpu.children["sandbox"] > 0
    assert result.ours_cpu.children["sandbox"] > 0
    assert 0 < result.gil_bound < float("inf")
    assert 0 < result.cores_bound < float("inf")
    for key in ("gil_bound=", "ours_flow_cpu_ms=", "baseline_sandbox_cpu_ms=", "ours_busy="):
        assert key in publish.report(result)
    line = task_runs.report(result)
    assert LINE.match(line)
    assert f"task_runs={result.task_runs}" in line


def test_throttled_benchmark_runs_under_the_limits(prefect_server: None) -> None:
    result = publish_throttled.run(
        tenants=1, per_minute=600, concurrent=5, windows=1, items_per_tenant=10, own_server=False
    )

    assert result.published == 10
    assert result.accepted_in_windows == 10
    assert result.ceiling == 600
    assert result.rate_limited == 0
    assert all(LINE.match(line) for line in publish_throttled.report(result))


def test_throttled_measure_counts_accepted_creations_in_whole_minutes() -> None:
    journal = [
        {"at": "2026-01-01T10:00:00Z", "method": "GET", "path": "/api/v1/suppliers", "status": 200},
        {"at": "2026-01-01T10:00:01Z", "method": "POST", "path": "/api/v1/expenses", "status": 201},
        {
            "at": "2026-01-01T10:00:59Z",
            "method": "POST",
            "path": "/api/v1/sales-invoices",
            "status": 201,
        },
        {"at": "2026-01-01T10:01:00Z", "method": "POST", "path": "/api/v1/expenses", "status": 429},
        {"at": "2026-01-01T10:01:02Z", "method": "POST", "path": "/api/v1/expenses", "status": 201},
        {"at": "2026-01-01T10:01:03Z", "method": "POST", "path": "/oauth/token", "status": 200},
    ]

    assert publish_throttled.measure(journal, 1) == (2, 5, 1)
    assert publish_throttled.measure(journal, 2) == (3, 5, 1)


@pytest.mark.timeout(300)
def test_sync_benchmark_syncs_all_suppliers_and_an_incremental_one_percent() -> None:
    results = sync.run(suppliers=1000, repeats=2)

    total = results["total"]["n"]
    assert total >= 1000
    runs = results["runs"]
    assert [len(runs[kind]) for kind in ("baseline", "full", "incremental")] == [2, 2, 2]
    # every full sync started from an empty table; every incremental saw only its own 1%
    assert all(r["fetched"] == r["inserted"] == total for r in runs["full"])
    changed = max(1, int(total * sync.CHANGED))
    assert all(r["fetched"] == r["updated"] == changed for r in runs["incremental"])
    assert results["full"] in runs["full"]
    assert 0 < results["full"]["peak_rss_mb"] < 1000
    assert all(LINE.match(line) for line in sync.report(results))


def test_cpu_of_this_process_and_of_a_child_is_measured_by_role() -> None:
    """``measure_cpu`` attributes CPU to this process and to its children by command line."""
    burn = "import sys, time\nsys.stdin.readline()\nend = time.process_time() + 0.4\n"
    burn += "while time.process_time() < end: pass\nsys.stdin.readline()  # sandbox.cli\n"
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the child is started (and idle)
        with measure_cpu() as span:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
            time.sleep(0.8)  # the child burns its 0.4 s
        assert span.own >= 0.25
        assert 0.3 <= span.children["sandbox"] <= 1.0
        assert span.machine >= span.own + span.children["sandbox"] - 0.1
        assert span.wall >= 1.0
        assert span.per_item_ms(100)["own"] == pytest.approx(10 * span.own)
    finally:
        child.kill()
        child.wait()


def test_intake_benchmark_imports_every_row_and_times_its_write_transactions() -> None:
    results = intake.run(rows=2000, connected_rows=600, repeats=1)

    [ours], [baseline] = results["runs"]["ours"], results["runs"]["baseline"]
    assert ours["rows"] == ours["imported"] == baseline["rows"] == 2000
    assert results["connected"]["imported"] == 600
    # an insert per 2,000 rows and the audit; the connected run also assesses (500 per write)
    assert ours["writes"] >= 2
    assert results["connected"]["writes"] > ours["writes"]
    assert 0 < ours["longest_write_s"] < 60
    assert ours["probe_writes"] > 0
    assert 0 < ours["peak_rss_mb"] < 1000
    lines = intake.report(results)
    assert [line.split()[1] for line in lines] == ["intake", "intake-memory", "intake-write-lock"]
    assert all(LINE.match(line) for line in lines), lines


def test_duplicate_check_benchmark_finds_every_planted_look_alike() -> None:
    results = duplicates.run(items=1000)

    assert results["assessed"] == duplicates.NEW
    assert results["held"] >= duplicates.NEW // 10  # the planted ones, and any chance twins
    assert results["review"] >= results["held"]
    lines = duplicates.report(results)
    assert [line.split()[1] for line in lines] == ["duplicate-check"]
    assert all(LINE.match(line) for line in lines), lines


def test_publish_remote_and_cpu_benchmarks_print_their_lines(prefect_server: None) -> None:
    remote = publish.run(items=10, businesses=2, own_server=False, latency=0.02)
    assert remote.published == 10
    assert publish.LAST["publish-remote"] is remote
    assert LINE.match(publish_remote.report(remote, 0.02))
    assert "latency_ms=20" in publish_remote.report(remote, 0.02)
    line = publish_cpu.report(remote)
    assert LINE.match(line)
    assert "target=3(at-most)" in line


@pytest.mark.slow
def test_ready_to_nomi_benchmark_publishes_through_the_served_trigger(prefect_server: None) -> None:
    line = ready_to_nomi.run(items=4, businesses=2, seconds=2, own_server=False)
    assert LINE.match(line), line
    assert "items=4" in line
    assert " runs=0" not in line
