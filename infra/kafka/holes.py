"""Records a consumer's fetch stepped over: a hole in a partition's offsets is read again.

Tansu (0.6, both its memory and its s3 engine) takes a produce's offsets by raising the partition's
high watermark, and only then writes the batch. When two producers write to one partition at once, a
fetch that lands between the later batch's write and the earlier one's returns the later batch alone,
and the consumer's position moves past the earlier record, which it is never given. Measured with eight
producers on one partition and a consumer reading along: 3 of 8,000 acknowledged records were never
delivered to it, though a fresh read found all of them in the log. A command stepped over that way got
its 202 and never settles.

So a consumer remembers where each partition's next record should be. When a fetch shows a hole (a
first offset past that point, or a jump between two records), a reader of its own (no group, so it
moves no committed offset) reads the hole again until the late records show up or `wait_s` passes. A
hole that stays empty was a produce that failed between its two writes (the broker killed), never
acknowledged, and is given up. Apache Kafka's offsets have no such holes (transaction markers aside,
which ledgerflow does not write), so there the check costs a comparison per fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

log = structlog.get_logger(__name__)
READ_TIMEOUT_MS = 100
RETRY_PAUSE_S = 0.05


class _Record(Protocol):
    @property
    def offset(self) -> int: ...


R = TypeVar("R", bound=_Record)


class _Committed(Protocol):
    async def committed(self, partition: TopicPartition) -> int | None: ...


def holes(expected: int | None, offsets: Sequence[int]) -> list[int]:
    """The offsets missing from `offsets` (ascending), counting from `expected` (None: from the first).

    Offsets below `expected` are records given again (a seek back), which open no hole.
    """
    missing: list[int] = []
    following = expected
    for offset in offsets:
        if following is not None and offset > following:
            missing.extend(range(following, offset))
        if following is None or offset >= following:
            following = offset + 1
    return missing


class HoleFiller:
    """Tracks each partition's next offset for one consumer and reads the holes its fetches show.

    `reader` makes the side consumer when a first hole needs it; `on_hole` is told of each hole's
    outcome: "filled" (every hidden record found) or "empty".
    """

    def __init__(
        self,
        reader: Callable[[], AIOKafkaConsumer],
        *,
        wait_s: float,
        on_hole: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self._make_reader = reader
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._wait_s = wait_s
        self._on_hole = on_hole
        self._next: dict[TopicPartition, int] = {}

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions assigned or revoked: where another consumer left them is read from the group."""
        for partition in partitions:
            self._next.pop(partition, None)

    async def complete(self, group: _Committed, partition: TopicPartition, records: Sequence[R]) -> list[R]:
        """`records` (one partition's, in offset order) with the records its holes hid, in offset order."""
        if not records or self._wait_s <= 0:
            return list(records)
        expected = self._next.get(partition)
        if expected is None:
            # The first fetch since an assignment starts at the group's committed offset.
            expected = await group.committed(partition)
        missing = holes(expected, [record.offset for record in records])
        self._next[partition] = max(records[-1].offset + 1, expected or 0)
        if not missing:
            return list(records)
        found: list[R] = await self._read(partition, missing)
        self._on_hole("filled" if len(found) == len(missing) else "empty")
        log.warning(
            "kafka.offset_hole",
            topic=partition.topic,
            partition=partition.partition,
            first=missing[0],
            offsets=len(missing),
            found=len(found),
        )
        return sorted([*records, *found], key=lambda record: record.offset)

    async def _read(self, partition: TopicPartition, missing: list[int]) -> list[Any]:
        wanted = set(missing)
        found: dict[int, Any] = {}
        deadline = time.monotonic() + self._wait_s
        async with self._lock:
            reader = await self._started()
            reader.assign([partition])
            while wanted - found.keys() and time.monotonic() < deadline:
                reader.seek(partition, min(wanted - found.keys()))
                batch = await reader.getmany(partition, timeout_ms=READ_TIMEOUT_MS, max_records=len(wanted))
                for record in batch.get(partition, []):
                    if record.offset in wanted:
                        found[record.offset] = record
                if wanted - found.keys():
                    await asyncio.sleep(RETRY_PAUSE_S)
        return [found[offset] for offset in sorted(found)]

    async def _started(self) -> AIOKafkaConsumer:
        if self._reader is None:
            reader = self._make_reader()
            await reader.start()
            self._reader = reader
        return self._reader

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None


def hole_reader(bootstrap_servers: str, client_id: str, max_partition_fetch_bytes: int) -> AIOKafkaConsumer:
    """The side consumer that reads holes: no group, so it commits nothing and joins nothing."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=READ_TIMEOUT_MS,
        max_partition_fetch_bytes=max_partition_fetch_bytes,
    )
