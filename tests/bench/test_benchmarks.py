"""Smoke tests: every benchmark's code runs at a tiny size and prints well-formed BENCH lines.

The sizes say nothing about performance (docs/performance.md holds the measured numbers); they
check that the set-up, both measured sides and the reports work end to end against a real sandbox
process and the session's Prefect server.
"""

from __future__ import annotations

import re

import pytest

from bench import publish, publish_throttled, sync, task_runs

LINE = re.compile(r"^BENCH [a-z0-9-]+ ratio=\d+\.\d{3} target=\S+( [a-z_0-9]+=\S+)*$")


def test_publish_benchmark_publishes_every_item_once_and_counts_task_runs(
    prefect_server: None,
) -> None:
    result = publish.run(items=20, businesses=2, own_server=False)

    assert result.published == 20
    assert result.concurrency == publish.flow_workers() * publish.PER_TENANT_CONCURRENCY
    assert result.ours_seconds > 0
    assert result.baseline_seconds > 0
    # recover + one batch per business (it took every Ready item: no empty second batch) + a
    # record per business; counted once the server has recorded them all
    assert result.task_runs == 1 + 2 + 2
    assert LINE.match(publish.report(result))
    assert publish.LAST["publish"] is result
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
