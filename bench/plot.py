"""The PNG: throughput (accepted POSTs and outcomes per second) and POST-to-settled latency percentiles
over time, one line per variant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def plot(runs: Mapping[str, Mapping[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_latency = False
    for index, (name, figures) in enumerate(runs.items()):
        series = figures.get("timeseries")
        if not series:
            continue
        colour = colours[index % len(colours)]
        t = series["t"]
        rates.plot(t, series["settled"], color=colour, label=f"{name}: settled/s")
        if any(series["accepted"]):
            rates.plot(t, series["accepted"], color=colour, linestyle=":", label=f"{name}: accepted POST/s")
        for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
            values = [v if v is not None and not math.isnan(v) else None for v in series[key]]
            any_latency = any_latency or any(v is not None and v > 0 for v in values)
            latency.plot(t, values, color=colour, linestyle=style, label=f"{name}: {key[:3]}")
        if index == 0 and "warmup_s" in figures:
            # The measured window, between the grey lines.
            start = figures["warmup_s"]
            for axes in (rates, latency):
                for at in (start, start + figures.get("window_s", 0)):
                    axes.axvline(at, color="grey", linewidth=0.8)
    rates.set_ylabel("per second")
    rates.set_title(title, fontsize=10)
    rates.legend(fontsize=8, loc="upper left")
    rates.grid(alpha=0.3)
    latency.set_ylabel("POST -> settled (ms)")
    latency.set_xlabel("seconds since the load started (measured between the grey lines)")
    # A run that settles nothing (intake-only) has no latency to put on a log scale.
    if any_latency:
        latency.set_yscale("log")
    latency.legend(fontsize=8, loc="upper left")
    latency.grid(alpha=0.3, which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
