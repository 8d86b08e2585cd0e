"""Every consumer's own Prometheus metrics (FastStream's middleware adds the per-fetch ones), served on the
process's metrics port (`serve`): outcomes, retries, dead letters, batch sizes, lag, oldest unsettled.

The settlement path is hot: outcomes are tallied per batch and counted once per distinct label set, the
label children of fixed label values are bound once here, and lag is set once per partition per fetch.
One process serves one consumer, so no series carries the consumer's name: the scrape target tells.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Literal

from aiokafka import TopicPartition
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

RetryCause = Literal["transient", "conflict", "handler_error", "batch_fallback"]
RETRY_CAUSES: Final[tuple[RetryCause, ...]] = ("transient", "conflict", "handler_error", "batch_fallback")
_SIZES: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

OUTCOMES: Final = Counter(
    "ledgerflow_consumer_outcomes_total",
    "Messages decided, by message type, result (settled, rejected, applied, duplicate, recorded, ignored) "
    "and rejection reason",
    ["kind", "result", "reason"],
)
RETRIES: Final = Counter(
    "ledgerflow_consumer_retries_total",
    "Work done again: transient fault waited out, refused write re-decided (conflict), failed handler "
    "attempt, batch replayed record by record",
    ["cause"],
)
DEAD_LETTERS: Final = Counter(
    "ledgerflow_consumer_dead_letters_total",
    "Messages written to <topic>.dlq, by original topic and x-error code",
    ["topic", "reason"],
)
FETCH_RECORDS: Final = Histogram(
    "ledgerflow_consumer_fetch_records", "Records per fetched batch", buckets=_SIZES
)
SETTLE_BATCH: Final = Histogram(
    "ledgerflow_consumer_settle_batch_messages",
    "Messages per settlement (one store read and one write)",
    buckets=_SIZES,
)
LAG: Final = Gauge(
    "ledgerflow_consumer_lag_records",
    "Records between this consumer's position and the partition's end (highwater), after each fetch",
    ["topic", "partition"],
)
OLDEST_UNSETTLED: Final = Gauge(
    "ledgerflow_consumer_oldest_unsettled_seconds",
    "Age (since it was written to Kafka) of the oldest fetched record not yet committed; 0 when idle",
)

OFFSET_HOLES: Final = Counter(
    "ledgerflow_consumer_offset_holes_total",
    "Holes in a partition's offsets read again (infra/kafka/holes.py): filled (every hidden record found) "
    "or empty (a produce that never completed)",
    ["outcome"],
)

_RETRY: Final = {cause: RETRIES.labels(cause) for cause in RETRY_CAUSES}


def count_retry(cause: RetryCause) -> None:
    _RETRY[cause].inc()


def count_hole(outcome: str) -> None:
    OFFSET_HOLES.labels(outcome).inc()


def count_outcomes(tally: Tally[tuple[str, str, str]]) -> None:
    for labels, n in tally.items():
        OUTCOMES.labels(*labels).inc(n)


def count_outcome(kind: str, result: str, reason: str = "") -> None:
    OUTCOMES.labels(kind, result, reason).inc()


def count_dead_letter(topic: str, reason: str) -> None:
    DEAD_LETTERS.labels(topic, reason).inc()


def observe_settlement(messages: int) -> None:
    SETTLE_BATCH.observe(messages)


class _InFlight:
    """Kafka timestamps (ms) of the oldest record of each batch being processed."""

    def __init__(self) -> None:
        self._oldest: dict[int, int] = {}

    def age_s(self) -> float:
        if not self._oldest:
            return 0.0
        return max(0.0, time.time() - min(self._oldest.values()) / 1000)

    @contextmanager
    def batch(self, token: int, oldest_ms: int) -> Iterator[None]:
        self._oldest[token] = oldest_ms
        try:
            yield
        finally:
            del self._oldest[token]


_IN_FLIGHT: Final = _InFlight()
# Each partition's key and gauge child, made once: labels() costs more than the set itself.
_LAG_BY_PARTITION: Final[dict[tuple[str, int], tuple[TopicPartition, Any]]] = {}
OLDEST_UNSETTLED.set_function(_IN_FLIGHT.age_s)


@contextmanager
def fetched(by_partition: Mapping[tuple[str, int], Sequence[Any]], consumer: Any) -> Iterator[None]:
    """Around one fetched batch, grouped by partition (each in offset order): its size, its oldest
    record's age while it is in flight, and each partition's lag once it is done. `consumer` is the
    aiokafka consumer, whose highwaters the fetch refreshed."""
    FETCH_RECORDS.observe(sum(len(records) for records in by_partition.values()))
    oldest_ms = min(records[0].timestamp for records in by_partition.values())
    with _IN_FLIGHT.batch(id(by_partition), oldest_ms):
        yield
    if consumer is None:
        return
    for (topic, partition), records in by_partition.items():
        lag = _LAG_BY_PARTITION.get((topic, partition))
        if lag is None:
            lag = _LAG_BY_PARTITION[(topic, partition)] = (
                TopicPartition(topic, partition),
                LAG.labels(topic, str(partition)),
            )
        highwater = consumer.highwater(lag[0])
        if highwater is not None:
            lag[1].set(max(0, highwater - records[-1].offset - 1))


def serve(port: int, addr: str) -> Any:
    """Serves this process's metrics (and its CPU and memory) on `addr:port`; returns the server, whose
    `shutdown()` stops it."""
    server, _ = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
