"""Report transforms on tiny hand-made DataFrames with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from connector import reports

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
COUNT_COLUMNS = ["business", "day", "step", "outcome", "error_code", "retried", "attempts"]


def counts(*rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COUNT_COLUMNS)


ATTEMPTS = counts(
    ("acme", D1, "expense", "published", None, False, 3),
    ("acme", D1, "attachment", "published", None, False, 2),  # not a record: not counted
    ("acme", D1, "expense", "rejected", "VALIDATION", False, 1),
    ("acme", D1, "expense", "transient", "SERVER_ERROR", True, 2),
    ("acme", D2, "lookup", "published", None, True, 1),
    ("acme", D2, "contact", "held", "NEW_SUPPLIER", False, 1),
    ("bolt", D1, "sales_invoice", "published", None, False, 1),
    ("bolt", D1, "expense", "connection_lost", None, False, 1),
)


def test_daily_outcomes_count_records_failures_holds_and_retries_per_business_and_day() -> None:
    daily = reports.daily_outcomes(ATTEMPTS)
    got = daily.set_index(["business", "day"])
    assert got.loc[
        ("acme", D1), ["published", "failed", "held", "retried", "attempts"]
    ].tolist() == [
        3,
        3,
        0,
        2,
        8,
    ]
    assert got.loc[("acme", D1), "failure_rate"] == pytest.approx(0.5)
    assert got.loc[("acme", D2), ["published", "held", "retried"]].tolist() == [1, 1, 1]
    assert got.loc[("acme", D2), "failure_rate"] == 0.0
    assert got.loc[("bolt", D1), "failure_rate"] == pytest.approx(0.5)


def test_daily_outcomes_of_no_attempts_is_an_empty_frame_with_the_columns() -> None:
    daily = reports.daily_outcomes(counts())
    assert daily.empty
    assert "failure_rate" in daily.columns


def test_totals_by_business_and_day_sum_the_daily_rows() -> None:
    daily = reports.daily_outcomes(ATTEMPTS)
    by_business = reports.totals_by(daily, "business").set_index("business")
    assert by_business.loc["acme", "published"] == 4
    assert by_business.loc["acme", "failed"] == 3
    assert by_business.loc["acme", "failure_rate"] == pytest.approx(3 / 7, abs=1e-4)
    by_day = reports.totals_by(daily, "day").set_index("day")
    assert by_day.loc[D1, "published"] == 4
    assert by_day.loc[D1, "failed"] == 4
    assert by_day.loc[D2, "attempts"] == 2


def test_failure_reasons_rank_nomi_codes_holds_and_review_reasons_by_count() -> None:
    reviews = pd.DataFrame(
        [("acme", "no category"), ("bolt", "no category"), ("bolt", "no total")],
        columns=["business", "reason"],
    )
    ranked = reports.failure_reasons(ATTEMPTS, reviews)
    assert ranked[["rank", "source", "reason", "count", "businesses"]].values.tolist() == [
        [1, "nomi", "SERVER_ERROR", 2, 1],
        [2, "review", "no category", 2, 2],
        [3, "held", "NEW_SUPPLIER", 1, 1],
        [4, "nomi", "(none)", 1, 1],
        [5, "nomi", "VALIDATION", 1, 1],
        [6, "review", "no total", 1, 1],
    ]


def test_failure_reasons_of_nothing_is_empty() -> None:
    empty = pd.DataFrame(columns=["business", "reason"])
    assert reports.failure_reasons(counts(), empty).empty


def test_latency_stats_give_median_p95_and_max_overall_then_per_business() -> None:
    latencies = pd.DataFrame(
        {
            "business": ["acme"] * 20 + ["bolt"],
            "day": [D1] * 21,
            "latency_s": [float(s) for s in range(1, 21)] + [100.0],
        }
    )
    stats = reports.latency_stats(latencies).set_index("business")
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
    daily = reports.latency_by_day(latencies).set_index("day")
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
    totals = reports.run_totals(run_days).set_index("trigger")
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
    durations = reports.with_durations(runs)["duration_s"]
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
    out = reports.waiting_items(items, NOW)
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
    out = reports.sync_freshness(state, NOW, timedelta(hours=24))
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
    out = reports.expiring_connections(connections, NOW, timedelta(days=30))
    assert out["business"].tolist() == ["gone", "soon"]
    assert out["days_left"].tolist() == [-1, 12]


def test_headline_totals_match_the_daily_rows_and_the_overall_latency() -> None:
    by_day = reports.totals_by(reports.daily_outcomes(ATTEMPTS), "day")
    latency = pd.DataFrame(
        [("all", 5, 60.0, 90.0, 100.0)],
        columns=["business", "published", "median_s", "p95_s", "max_s"],
    )
    totals = reports.headline(by_day, latency)
    assert totals["published"] == 5
    assert totals["failed"] == 4
    assert totals["held"] == 1
    assert totals["retried"] == 3
    assert totals["failure_rate"] == pytest.approx(4 / 9, abs=1e-4)
    assert totals["latency_median_s"] == 60
    assert totals["latency_p95_s"] == 90
