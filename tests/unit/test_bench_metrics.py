"""The benchmark's pure figures: percentiles, window accounting, per-second series, ratios, the table."""

from __future__ import annotations

import math

import pytest

from bench.metrics import (
    Outcome,
    Post,
    Recorded,
    Window,
    counter_delta,
    latency_summary,
    per_command,
    per_second,
    percentile,
    ratio,
    summarize,
)
from bench.report import comparison, lookup


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1


def test_percentile_does_not_need_sorted_input_and_handles_one_value() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2
    assert percentile([7.0], 0.99) == 7


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary([0.010, 0.020, 0.030, 0.040])
    assert summary == {"n": 4, "p50_ms": 20.0, "p95_ms": 40.0, "p99_ms": 40.0, "max_ms": 40.0}
    assert latency_summary([])["n"] == 0


def test_window_bounds() -> None:
    window = Window(10.0, 20.0)
    assert window.seconds == 10
    assert 10.0 in window and 19.999 in window
    assert 20.0 not in window and 9.999 not in window
    with pytest.raises(ValueError):
        Window(5.0, 5.0)


def test_summarize_counts_rates_inside_the_window_only() -> None:
    recorded = Recorded(
        posts=[
            Post(sent_at=9.5, latency_s=0.01, status=202),  # warm-up: left out
            Post(sent_at=10.0, latency_s=0.02, status=202),
            Post(sent_at=12.0, latency_s=0.04, status=202),
            Post(sent_at=13.0, latency_s=0.5, status=503),
            Post(sent_at=20.0, latency_s=0.01, status=202),  # after the end: left out
        ],
        outcomes=[
            Outcome(sent_at=9.5, settled_at=10.5, settled=True, kind="deposit"),  # counted: settled inside
            Outcome(sent_at=10.0, settled_at=10.1, settled=True, kind="buy"),
            Outcome(sent_at=12.0, settled_at=20.5, settled=False, kind="sell"),  # latency counted only
        ],
        unsettled=[11.0, 25.0],
    )
    figures = summarize(recorded, Window(10.0, 20.0))
    assert figures["posts"] == 3
    assert figures["accepted"] == 2
    assert figures["accepted_per_s"] == 0.2
    assert figures["post_statuses"] == {"202": 2, "503": 1}
    assert figures["outcomes"] == 2
    assert figures["settled_per_s"] == 0.2
    assert figures["rejected"] == 0
    assert figures["outcomes_by_kind"] == {"buy": 1, "deposit": 1}
    assert figures["unsettled"] == 1
    # POST latency: accepted POSTs sent inside the window only.
    assert figures["post_latency"]["n"] == 2
    assert figures["post_latency"]["max_ms"] == 40.0
    # POST->settled: commands sent inside the window, whenever their outcome came.
    assert figures["settle_latency"]["n"] == 2
    assert figures["settle_latency"]["max_ms"] == 8500.0


def test_per_second_buckets_by_whole_second_since_the_origin() -> None:
    recorded = Recorded(
        posts=[Post(100.2, 0.01, 202), Post(100.9, 0.01, 202), Post(101.5, 0.01, 429), Post(99.0, 0.01, 202)],
        outcomes=[Outcome(100.2, 100.3, True, "deposit"), Outcome(100.9, 101.9, True, "deposit")],
    )
    series = per_second(recorded, origin=100.0, end=102.5)
    assert series["t"] == [0.0, 1.0, 2.0]
    assert series["accepted"] == [2.0, 0.0, 0.0]
    assert series["settled"] == [1.0, 1.0, 0.0]
    assert series["p50_ms"][0] == pytest.approx(100.0, abs=0.1)
    assert series["p99_ms"][1] == pytest.approx(1000.0, abs=0.1)
    assert math.isnan(series["p50_ms"][2])


def test_counter_delta_and_per_command() -> None:
    before = {"GetItem": 10.0, "Query": 5.0}
    after = {"GetItem": 30.0, "Query": 5.0, "TransactWriteItems": 40.0}
    delta = counter_delta(before, after)
    assert delta == {"GetItem": 20.0, "TransactWriteItems": 40.0}
    assert per_command(delta, 20) == {"GetItem": 1.0, "TransactWriteItems": 2.0}
    assert per_command({"api": 3.0}, 1500, scale=1000) == {"api": 2.0}
    assert math.isnan(per_command({"api": 3.0}, 0)["api"])


def test_ratio_means_nothing_without_a_base() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


def test_comparison_table_has_a_ratio_column_per_extra_variant() -> None:
    runs = {
        "one": {"settled_per_s": 50.0, "settle_latency": {"p99_ms": 900.0}},
        "batched": {"settled_per_s": 500.0, "settle_latency": {"p99_ms": 90.0}},
    }
    table = comparison(runs).splitlines()
    assert table[0].split() == ["figure", "one", "batched", "batched/one"]
    settled = next(line for line in table if line.startswith("settled commands/s"))
    assert settled.split()[-3:] == ["50.0", "500", "10.00x"]
    p99 = next(line for line in table if line.startswith("POST->settled p99"))
    assert p99.split()[-1] == "0.10x"
    # Figures no variant has are left out.
    assert not any(line.startswith("Redis") for line in table)


def test_lookup_follows_a_path_and_gives_nan_when_missing() -> None:
    figures = {"post_latency": {"p50_ms": 12.5}, "accepted_per_s": None}
    assert lookup(figures, ("post_latency", "p50_ms")) == 12.5
    assert math.isnan(lookup(figures, ("post_latency", "p99_ms")))
    assert math.isnan(lookup(figures, ("accepted_per_s",)))
