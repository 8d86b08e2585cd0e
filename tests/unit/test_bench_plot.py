"""The plot is drawn for every mode, an intake-only run (nothing settles, no latency) included."""

from __future__ import annotations

import math
from pathlib import Path

from bench.plot import plot


def _run(latency: float | None) -> dict[str, object]:
    return {
        "warmup_s": 1.0,
        "window_s": 2.0,
        "timeseries": {
            "t": [0, 1, 2],
            "accepted": [10.0, 12.0, 11.0],
            "settled": [0.0, 0.0, 0.0] if latency is None else [9.0, 12.0, 11.0],
            "p50_ms": [math.nan if latency is None else latency] * 3,
            "p99_ms": [None if latency is None else 2 * latency] * 3,
        },
    }


def test_runs_with_and_without_latency_are_plotted(tmp_path: Path) -> None:
    for name, runs in {
        "intake": {"batched": _run(None)},
        "e2e": {"one": _run(40.0), "batched": _run(None)},
    }.items():
        path = tmp_path / f"{name}.png"
        plot(runs, name, path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
