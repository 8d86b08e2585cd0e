"""Kafka access for operators, written around Tansu's known gaps so that it works on Apache Kafka too.

- Ends of partitions come from `highwater()` after a fetch, never from ListOffsets (Tansu answers the
  last batch's base offset + 1).
- The offset for a time is a binary search over fetched record timestamps (Tansu's
  `offsets_for_times` answers 0 for any past time).
- A group's offsets are reset by joining the group, committing and leaving (there is no
  alter-offsets call in aiokafka, and Tansu refuses commits from outside the group).
- `describe_consumer_groups` is asked only about groups that `list_consumer_groups` knows: Tansu
  answers an unknown group with a malformed response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from infra.cli.errors import CliError
from infra.settings import Settings

# aiokafka is untyped here (ignore_missing_imports): records are `Any` to mypy.
Record = Any
_POLL_MS = 200


class NotAssigned(CliError):
    """A join did not get every wanted partition: another member of the group holds some."""


@dataclass(frozen=True)
class GroupState:
    exists: bool
    state: str
    members: tuple[str, ...]

    @property
    def active(self) -> bool:
        return bool(self.members)


async def _bounded(awaitable: Any, settings: Settings, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, settings.cli_timeout_s)
    except TimeoutError as exc:
        raise CliError(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer {what} "
            f"within {settings.cli_timeout_s:g} s"
        ) from exc


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="ledgerflow-cli",
        request_timeout_ms=int(settings.cli_timeout_s * 1000),
    )
    try:
        await _bounded(admin.start(), settings, "a connection")
        yield admin
    finally:
        with suppress(Exception):
            await admin.close()


def _consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="ledgerflow-cli",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=settings.kafka_max_message_bytes * 4,
        **options,
    )


@asynccontextmanager
async def reader(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group: assigned partitions by hand, never commits."""
    consumer = _consumer(settings)
    try:
        await _bounded(consumer.start(), settings, "a connection")
        yield consumer
    finally:
        with suppress(Exception):
            await consumer.stop()


@asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    sender = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="ledgerflow-cli",
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        max_request_size=settings.kafka_max_message_bytes * 4,
    )
    try:
        await _bounded(sender.start(), settings, "a connection")
        yield sender
    finally:
        with suppress(Exception):
            await sender.stop()


async def list_topics(admin: AIOKafkaAdminClient) -> list[str]:
    return sorted(t for t in await admin.list_topics() if not t.startswith("__"))


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(found or ())]


async def highwaters(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], settings: Settings
) -> dict[TopicPartition, int]:
    """The end (offset of the next message) of each partition, read from fetch responses."""
    if not tps:
        return {}
    consumer.assign(list(tps))
    # ListOffsets points at (or just past) the last batch on Tansu: a cheap place to fetch from.
    hints = await _bounded(consumer.end_offsets(list(tps)), settings, "ListOffsets")
    for tp in tps:
        consumer.seek(tp, max(0, int(hints.get(tp, 0)) - 1))
    deadline = time.monotonic() + settings.cli_timeout_s
    while True:
        known = {tp: consumer.highwater(tp) for tp in tps}
        if all(value is not None for value in known.values()):
            return {tp: int(value) for tp, value in known.items()}
        if time.monotonic() > deadline:
            missing = ", ".join(f"{tp.topic}[{tp.partition}]" for tp, v in known.items() if v is None)
            raise CliError(f"no fetch answer for {missing} within {settings.cli_timeout_s:g} s")
        await consumer.getmany(*tps, timeout_ms=_POLL_MS, max_records=1)


async def topic_ends(
    consumer: AIOKafkaConsumer, topics: Iterable[str], settings: Settings
) -> dict[TopicPartition, int]:
    tps = [tp for topic in topics for tp in await partitions(consumer, topic)]
    return await highwaters(consumer, tps, settings)


async def beginnings(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], settings: Settings
) -> dict[TopicPartition, int]:
    found = await _bounded(consumer.beginning_offsets(list(tps)), settings, "ListOffsets")
    return {tp: int(found.get(tp, 0)) for tp in tps}


async def record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int) -> Record | None:
    """The first record at or after `offset` (None when there is none before `end`)."""
    consumer.seek(tp, offset)
    for _ in range(50):
        batch = await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=1)
        records = batch.get(tp, [])
        if records:
            return records[0]
        if await consumer.position(tp) >= end:
            return None
    return None


async def offset_for_time(
    consumer: AIOKafkaConsumer, tp: TopicPartition, timestamp_ms: int, begin: int, end: int
) -> int:
    """The first offset whose record timestamp is >= `timestamp_ms` (`end` if none): binary search."""
    consumer.assign([tp])
    low, high = begin, end
    while low < high:
        middle = (low + high) // 2
        record = await record_at(consumer, tp, middle, end)
        if record is None or record.timestamp >= timestamp_ms:
            high = middle
        else:
            # Offsets may have gaps (compaction, transaction markers): continue after the record found.
            low = record.offset + 1
    return low


async def read_all(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int], settings: Settings
) -> AsyncIterator[Record]:
    """Every record from the start of each partition up to the given ends (a snapshot)."""
    pending = {tp: end for tp, end in ends.items() if end > 0}
    if not pending:
        return
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, 0)
    quiet_since = time.monotonic()
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=_POLL_MS, max_records=500)
        if batch:
            quiet_since = time.monotonic()
        for tp, records in batch.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
            if tp in pending and await consumer.position(tp) >= pending[tp]:
                del pending[tp]
        if not batch:
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
            if pending and time.monotonic() - quiet_since > settings.cli_timeout_s:
                raise CliError(f"reading stalled before the end of {sorted(t.topic for t in pending)}")


async def group_state(admin: AIOKafkaAdminClient, group: str) -> GroupState:
    listed = {name for name, *_ in await admin.list_consumer_groups()}
    if group not in listed:
        return GroupState(exists=False, state="Dead", members=())
    described = await admin.describe_consumer_groups([group])
    for response in described:
        for entry in response.groups:
            error_code, name, state, _protocol_type, _protocol, members = entry[:6]
            if name == group and error_code == 0:
                return GroupState(True, str(state), tuple(str(m[0]) for m in members))
    return GroupState(exists=True, state="Unknown", members=())


async def existing_groups(admin: AIOKafkaAdminClient) -> set[str]:
    return {name for name, *_ in await admin.list_consumer_groups()}


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offset per partition (None: nothing committed yet)."""
    if not tps:
        return {}
    found = await admin.list_consumer_group_offsets(group, partitions=list(tps))
    result: dict[TopicPartition, int | None] = {}
    for tp in tps:
        meta = found.get(tp)
        result[tp] = int(meta.offset) if meta is not None and meta.offset >= 0 else None
    return result


async def commit_as_group(
    settings: Settings, group: str, targets: Mapping[TopicPartition, int], join_timeout_s: float
) -> None:
    """Join `group`, wait for every target partition, commit the targets and leave.

    Only safe while the group's own consumers are stopped: the caller checks that first.
    """
    topics = sorted({tp.topic for tp in targets})
    consumer = _consumer(
        settings,
        group_id=group,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )
    try:
        await _bounded(consumer.start(), settings, "a connection")
        consumer.subscribe(topics)
        deadline = time.monotonic() + join_timeout_s
        while not set(targets) <= set(consumer.assignment()):
            if time.monotonic() > deadline:
                raise NotAssigned(
                    f"joined group {group!r} but got no assignment of {', '.join(topics)} within "
                    f"{join_timeout_s:g} s; is a consumer of the group still running? Nothing was changed"
                )
            # Polling drives the join; fetched records are discarded and never committed.
            await consumer.getmany(timeout_ms=_POLL_MS, max_records=1)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in targets.items()})
    finally:
        with suppress(Exception):
            await consumer.stop()
