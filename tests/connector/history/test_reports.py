"""Report transforms on tiny hand-made DataFrames with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from connector.history.reasons import reason_kind
from connector.history.report import build, failures, latency, operations, outcomes

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TOTAL_COLUMNS = ["published", "failed", "retried", "attempts"]

FAILURES = pd.DataFrame(
    [
        ("acme", "rejected", "VALIDATION", "Costco", 1),
        ("acme", "transient", "SERVER_ERROR", "Costco", 1),
        ("acme", "transient", "SERVER_ERROR", "Wickes", 1),
        ("bolt", "connection_lost", None, None, 1),
    ],
    columns=["business", "outcome", "error_code", "supplier", "attempts"],
)


def totals(key: str, *rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=[key, *TOTAL_COLUMNS])


def test_outcome_totals_sum_per_key_and_rate_failures_against_published_plus_failed() -> None:
    out = outcomes.outcome_totals(
        totals("business", ("bolt", 1, 1, 0, 2), ("acme", 3, 3, 2, 8), ("acme", 1, 0, 1, 2)),
        "business",
    )
    assert out["business"].tolist() == ["acme", "bolt"]
    assert out.loc[0, TOTAL_COLUMNS].tolist() == [4, 3, 3, 10]
    assert out.loc[0, "failure_rate_pct"] == 42.9  # 3 / 7 in percent, one decimal
    assert out.loc[1, "failure_rate_pct"] == 50.0


def test_outcome_totals_rate_is_zero_when_nothing_was_published_or_failed() -> None:
    out = outcomes.outcome_totals(totals("day", (D2, 0, 0, 0, 1), (D1, 2, 0, 0, 2)), "day")
    assert out["day"].tolist() == [D1, D2]
    assert out["failure_rate_pct"].tolist() == [0.0, 0.0]


def test_outcome_totals_of_nothing_is_an_empty_frame_with_the_columns() -> None:
    out = outcomes.outcome_totals(totals("day"), "day")
    assert out.empty
    assert "failure_rate_pct" in out.columns


REVIEWS = pd.DataFrame(
    [
        (
            "acme",
            "Royal Mail",
            "no category: set one on the item or add a supplier rule for 'Royal Mail'",
        ),
        ("acme", "Costco", "no category: set one on the item or add a supplier rule for 'Costco'"),
        (
            "bolt",
            "O'Brien's Cafe",
            "no category: set one on the item or add a supplier rule for 'O'Brien's Cafe'",
        ),
        ("bolt", None, "no category: set one on the item"),
        ("bolt", "Costco", "no total: enter the item's total"),
    ],
    columns=["business", "supplier", "reason"],
)


def test_failure_reasons_group_by_kind_and_keep_the_supplier_in_its_own_column() -> None:
    ranked = failures.failure_reasons(FAILURES, REVIEWS)
    assert ranked[
        ["rank", "source", "reason", "count", "businesses", "suppliers"]
    ].values.tolist() == [
        [1, "review", "no category", 4, 2, 3],
        [2, "nomi", "SERVER_ERROR", 2, 1, 2],
        [3, "nomi", "VALIDATION", 1, 1, 1],
        [4, "nomi", "connection_lost (no code)", 1, 1, 0],
        [5, "review", "no total", 1, 1, 1],
    ]
    assert ranked.loc[0, "top_suppliers"] == "Costco (1), O'Brien's Cafe (1), Royal Mail (1)"
    by_supplier = failures.failures_by_supplier(FAILURES, REVIEWS)
    no_category = by_supplier[by_supplier["reason"] == "no category"]
    assert sorted(no_category["supplier"]) == ["", "Costco", "O'Brien's Cafe", "Royal Mail"]
    assert no_category["count"].sum() == 4


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("no category: set one on the item or add a supplier rule for 'Acme'", "no category"),
        (
            "new supplier 'Kwik: Fit' is not in Nomi: confirm creating it",
            "new supplier is not in Nomi",
        ),
        (
            "category 'Travel' (from the supplier rule for 'Acme') is archived in Nomi: choose",
            "category is archived in Nomi",
        ),
        (
            "several Nomi suppliers match 'O'Brien's': map the item to one of them",
            "several Nomi suppliers match",
        ),
        (
            "tax rate 'Zero' (the default) applies to sales only and cannot be used on cost items",
            "tax rate applies to sales only and cannot be used on cost items",
        ),
        ("no total: enter the item's total", "no total"),
    ],
)
def test_a_review_reason_kind_drops_the_names_in_it(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_failure_reasons_of_nothing_is_empty() -> None:
    empty = pd.DataFrame(columns=["business", "supplier", "reason"])
    assert failures.failure_reasons(FAILURES.iloc[0:0], empty).empty
    assert failures.failures_by_supplier(FAILURES.iloc[0:0], empty).empty


def test_call_latency_percentiles_are_nearest_rank_over_the_counted_durations() -> None:
    durations = {"acme": [10, 20, 30, 40, 1000], "bolt": [50] * 99 + [700]}
    calls = pd.DataFrame(
        [(b, "expense", ms, 1) for b, values in durations.items() for ms in values],
        columns=["business", "step", "latency_ms", "calls"],
    )
    calls = calls.groupby(["business", "step", "latency_ms"], as_index=False)["calls"].sum()
    every = calls.groupby(["step", "latency_ms"], as_index=False)["calls"].sum()
    out = latency.call_latency(pd.concat([every.assign(business="all"), calls]))
    assert out["business"].tolist() == ["all", "acme", "bolt"]  # all first
    out = out.set_index("business")
    every_ms = sorted(ms for values in durations.values() for ms in values)
    for business, values in [("all", every_ms), *durations.items()]:
        ordered = sorted(values)
        for p in (50, 95, 99):
            expected = ordered[max(0, -(-len(ordered) * p // 100) - 1)] / 1000
            assert out.loc[business, f"p{p}_s"] == expected, (business, p)
        assert out.loc[business, "max_s"] == max(values) / 1000
        assert out.loc[business, "calls"] == len(values)
    assert out.loc["all", "endpoint"] == "POST /expenses"


def test_latency_stats_give_median_p95_and_max_overall_then_per_business() -> None:
    latencies = pd.DataFrame(
        {
            "business": ["acme"] * 20 + ["bolt"],
            "day": [D1] * 21,
            "latency_s": [float(s) for s in range(1, 21)] + [100.0],
        }
    )
    stats = latency.latency_stats(latencies).set_index("business")
    assert stats.index.tolist() == ["all", "acme", "bolt"]
    assert stats.loc["acme", "median_s"] == 10.5
    assert stats.loc["acme", "p95_s"] == pytest.approx(19.05)
    assert stats.loc["acme", "max_s"] == 20
    assert stats.loc["all", "published"] == 21
    assert stats.loc["all", "median_s"] == 11
    assert stats.loc["bolt", "p95_s"] == 100


def test_latency_by_day_gives_each_days_median_and_p95() -> None:
    latencies = pd.DataFrame(
        {"business": ["a"] * 4, "day": [D1, D1, D1, D2], "latency_s": [10.0, 20.0, 30.0, 5.0]}
    )
    daily = latency.latency_by_day(latencies).set_index("day")
    assert daily.loc[D1, ["published", "median_s"]].tolist() == [3, 20]
    assert daily.loc[D1, "p95_s"] == pytest.approx(29)
    assert daily.loc[D2, "median_s"] == 5


def test_run_totals_sum_counts_and_average_durations_per_trigger() -> None:
    run_days = pd.DataFrame(
        [
            ("schedule", D1, 2, 10, 8, 1, 1, 0, 30.0, 20.0),
            ("schedule", D2, 1, 5, 5, 0, 0, 0, 10.0, 10.0),
            ("manual", D1, 1, 3, 2, 1, 0, 0, 4.0, 4.0),
        ],
        columns=[
            "trigger",
            "day",
            "runs",
            "claimed",
            "published",
            "failed",
            "held",
            "skipped",
            "duration_s_sum",
            "duration_s_max",
        ],
    )
    totals = operations.run_totals(run_days).set_index("trigger")
    assert totals.loc["schedule", ["runs", "claimed", "published", "failed"]].tolist() == [
        3,
        15,
        13,
        1,
    ]
    assert totals.loc["schedule", "mean_duration_s"] == pytest.approx(40 / 3, abs=1e-3)
    assert totals.loc["schedule", "max_duration_s"] == 20
    assert totals.loc["manual", "mean_duration_s"] == 4


def test_recent_runs_get_their_duration_and_an_unfinished_run_none() -> None:
    started = pd.Timestamp(NOW)
    runs = pd.DataFrame(
        {"started_at": [started, started], "finished_at": [started + timedelta(seconds=90), pd.NaT]}
    )
    durations = operations.with_durations(runs)["duration_s"]
    assert durations.iloc[0] == 90
    assert pd.isna(durations.iloc[1])


def test_waiting_items_are_listed_longest_first_in_hours() -> None:
    items = pd.DataFrame(
        {
            "external_id": ["new", "old"],
            "waiting_since": [
                pd.Timestamp(NOW - timedelta(hours=1)),
                pd.Timestamp(NOW - timedelta(days=2)),
            ],
        }
    )
    out = operations.waiting_items(items, NOW)
    assert out["external_id"].tolist() == ["old", "new"]
    assert out["waiting_hours"].tolist() == [48.0, 1.0]


def test_sync_freshness_flags_old_and_never_synced_lists_as_stale() -> None:
    state = pd.DataFrame(
        {
            "business": ["acme", "acme", "acme"],
            "list_name": ["suppliers", "customers", "tax_rates"],
            "last_synced_at": [
                pd.Timestamp(NOW - timedelta(hours=2)),
                pd.Timestamp(NOW - timedelta(hours=30)),
                pd.NaT,
            ],
            "runs": [4, 1, 0],
            "failed_runs": [0, 1, 0],
        }
    )
    out = operations.sync_freshness(state, NOW, timedelta(hours=24))
    assert out["list_name"].tolist() == ["tax_rates", "customers", "suppliers"]
    assert out["stale"].tolist() == [True, True, False]
    assert out["age_hours"].iloc[1:].tolist() == [30.0, 2.0]


def test_expiring_connections_keep_those_within_the_horizon_soonest_first() -> None:
    connections = pd.DataFrame(
        {
            "business": ["far", "soon", "gone", "unset"],
            "organisation": ["F", "S", "G", "U"],
            "status": ["connected", "connected", "expired", "pending"],
            "consent_expires_at": [
                pd.Timestamp(NOW + timedelta(days=90)),
                pd.Timestamp(NOW + timedelta(days=12, hours=5)),
                pd.Timestamp(NOW - timedelta(days=1)),
                pd.NaT,
            ],
        }
    )
    out = operations.expiring_connections(connections, NOW, timedelta(days=30))
    assert out["business"].tolist() == ["gone", "soon"]
    assert out["days_left"].tolist() == [-1, 12]


def test_headline_totals_match_the_day_rows_and_the_overall_latency() -> None:
    by_day = outcomes.outcome_totals(totals("day", (D1, 4, 4, 2, 10), (D2, 1, 0, 1, 2)), "day")
    items = pd.DataFrame(
        [("acme", 3, 1), ("bolt", 2, 0)], columns=["business", "in_review", "ready"]
    )
    latency = pd.DataFrame(
        [("all", 5, 60.0, 90.0, 100.0)],
        columns=["business", "published", "median_s", "p95_s", "max_s"],
    )
    headline = build.headline(by_day, latency, items)
    assert headline["published"] == 5
    assert headline["failed"] == 4
    assert headline["held"] == 5  # items in review now, not held attempts
    assert headline["ready"] == 1
    assert headline["retried"] == 3
    assert headline["failure_rate_pct"] == 44.4
    assert headline["latency_median_s"] == 60
    assert headline["latency_p95_s"] == 90
