"""Pure figures: percentiles, what happened inside the measuring window, per-second series, ratios.

Times are wall-clock seconds (`time.time()`): the outcome events' Kafka timestamps are wall clock too,
and every process runs on this one machine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (0.5, 0.95, 0.99)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` in [0, 1]) of `values`, which need not be sorted; NaN when empty."""
    if not 0 <= q <= 1:
        raise ValueError(f"percentile {q} is not within [0, 1]")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/p99/max in milliseconds, and how many values there were."""
    ordered = sorted(seconds)
    summary: dict[str, float | int] = {"n": len(ordered)}
    for q in PERCENTILES:
        summary[f"p{round(q * 100)}_ms"] = _ms(percentile(ordered, q))
    summary["max_ms"] = _ms(ordered[-1]) if ordered else math.nan
    return summary


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1) if not math.isnan(seconds) else math.nan


@dataclass(frozen=True)
class Window:
    """The measured interval [start, end) in wall-clock seconds (warm-up before it is excluded)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a window must end after it starts")

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Post:
    """One POST: when it was due (open loop) or sent, how long until its answer, and the status code."""

    sent_at: float
    latency_s: float
    status: int


@dataclass(frozen=True)
class Outcome:
    """A command's outcome event: when the POST was sent, when the outcome was published, settled or not."""

    sent_at: float
    settled_at: float
    settled: bool
    kind: str

    @property
    def latency_s(self) -> float:
        return self.settled_at - self.sent_at


@dataclass
class Recorded:
    """Everything a load run saw; `summarize` turns it into figures."""

    posts: list[Post] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    # Accepted commands (202) still without an outcome when the run gave up waiting.
    unsettled: list[float] = field(default_factory=list)
    # Their command ids, so that one accepted and never settled can be looked for in the logs.
    unsettled_ids: list[str] = field(default_factory=list)


def summarize(recorded: Recorded, window: Window) -> dict[str, Any]:
    """The run's figures over `window`: rates count what happened inside it; latencies are those of the
    commands sent inside it (their outcome may come a little after it ends)."""
    posts = [p for p in recorded.posts if p.sent_at in window]
    accepted = [p for p in posts if p.status == 202]
    finished = [o for o in recorded.outcomes if o.settled_at in window]
    sent_in_window = [o for o in recorded.outcomes if o.sent_at in window]
    statuses = Counter(str(p.status) for p in posts)
    return {
        "window_s": round(window.seconds, 2),
        "posts": len(posts),
        "accepted": len(accepted),
        "accepted_per_s": round(len(accepted) / window.seconds, 1),
        "post_statuses": dict(sorted(statuses.items())),
        "outcomes": len(finished),
        "settled_per_s": round(len(finished) / window.seconds, 1),
        "rejected": sum(1 for o in finished if not o.settled),
        "outcomes_by_kind": dict(sorted(Counter(o.kind for o in finished).items())),
        "unsettled": sum(1 for t in recorded.unsettled if t in window),
        "unsettled_ids": recorded.unsettled_ids[:20],
        "post_latency": latency_summary([p.latency_s for p in accepted]),
        "settle_latency": latency_summary([o.latency_s for o in sent_in_window]),
    }


def per_second(recorded: Recorded, origin: float, end: float) -> dict[str, list[float]]:
    """Series by whole second since `origin` (load start) until `end`: accepted POSTs and outcomes in
    that second, and the p50/p99 POST-to-outcome latency (ms) of the outcomes in it."""
    buckets = max(1, math.ceil(end - origin))
    accepted = [0] * buckets
    settled = [0] * buckets
    latencies: list[list[float]] = [[] for _ in range(buckets)]
    for post in recorded.posts:
        index = _bucket(post.sent_at, origin, buckets)
        if index is not None and post.status == 202:
            accepted[index] += 1
    for outcome in recorded.outcomes:
        index = _bucket(outcome.settled_at, origin, buckets)
        if index is not None:
            settled[index] += 1
            latencies[index].append(outcome.latency_s)
    return {
        "t": [float(i) for i in range(buckets)],
        "accepted": [float(n) for n in accepted],
        "settled": [float(n) for n in settled],
        "p50_ms": [_ms(percentile(values, 0.5)) for values in latencies],
        "p99_ms": [_ms(percentile(values, 0.99)) for values in latencies],
    }


def _bucket(t: float, origin: float, buckets: int) -> int | None:
    index = math.floor(t - origin)
    return index if 0 <= index < buckets else None


def counter_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """`after - before` per key (a key missing before counts from 0), keeping only keys that grew."""
    delta = {key: after[key] - before.get(key, 0) for key in after}
    return {key: value for key, value in sorted(delta.items()) if value > 0}


def per_command(totals: Mapping[str, float], commands: int, scale: float = 1.0) -> dict[str, float]:
    """Each total divided by `commands` (times `scale`); NaN when no command was counted."""
    if commands <= 0:
        return {key: math.nan for key in totals}
    return {key: round(value * scale / commands, 4) for key, value in totals.items()}


def ratio(value: float, base: float) -> float:
    """`value / base`, NaN when it means nothing (a zero or missing base)."""
    if base == 0 or math.isnan(base) or math.isnan(value):
        return math.nan
    return value / base


def total(values: Iterable[float]) -> float:
    return float(sum(values))
