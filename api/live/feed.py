"""Each API worker fills its hub: accepted commands from the workers' announcements (api/live/announce.py),
outcomes and `prices` read from Kafka by the worker itself.

No consumer group: the worker assigns itself every partition, so any worker can serve any client, and
commits nothing. On start each partition is read from the first record of the replay window (found by
the records' timestamps), which fills the window that `Last-Event-ID` replays from. The outcome and
price partitions are then followed; a command partition is read only up to where it ended at start
(the announcements, subscribed before that end was taken, carry every command after it) and then
paused, so the broker no longer serves every accepted command to every worker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from redis.asyncio import Redis

from api.live.announce import Announcements
from api.live.hub import LIVE_TOPICS, OUTCOME_TOPICS, LiveHub, LiveRecord
from infra.settings import Settings
from infra.tasks import cancel_and_wait
from schemas.envelope import RawEnvelope
from schemas.topics import COMMAND_TOPICS, PRICES
from schemas.trading import PriceTick

log = structlog.get_logger(__name__)

_PROBE_TIMEOUT_MS: Final = 2000
_FETCH_TIMEOUT_MS: Final = 1000
_ERROR_BACKOFF_S: Final = 1.0


def live_record(record: Any) -> LiveRecord | None:
    """The hub's view of a Kafka record; None for one it cannot use (no key: every topic is keyed; a
    price record that is not a tick). A tick's value becomes its payload's JSON, checked and rendered
    here once for every stream it goes to."""
    if record.key is None:
        return None
    if record.topic == PRICES:
        command_id, value = None, _tick_data(record.value)
        if value is None:
            return None
    else:
        command_id = _command_id(record.value, outcome=record.topic in OUTCOME_TOPICS)
        value = record.value or b""
    return LiveRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        account_id=record.key.decode(errors="replace"),
        command_id=command_id,
        value=value,
    )


def _tick_data(value: bytes | None) -> bytes | None:
    try:
        envelope = RawEnvelope.model_validate_json(value or b"")
        return PriceTick.model_validate(envelope.payload).model_dump_json().encode()
    except ValidationError:
        return None


def _command_id(value: bytes | None, outcome: bool) -> uuid.UUID | None:
    """A command envelope's id, or an outcome's `causation_id` (the command it settles). A malformed
    record is the consumers' to dead-letter; here it is only skipped."""
    try:
        envelope = json.loads(value or b"")
        return uuid.UUID(str(envelope["causation_id" if outcome else "id"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class LiveFeed:
    def __init__(self, settings: Settings, hub: LiveHub, redis: Redis) -> None:
        self._settings = settings
        self._hub = hub
        self._announcements = Announcements(redis, hub)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # Command partitions still catching up, with the offset they ended at when the feed started.
        self._catching_up: dict[TopicPartition, int] = {}

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id="ledgerflow-api-live",
            enable_auto_commit=False,
            # Only after a record the window no longer needs was deleted: start again from the oldest.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
        )

    async def start(self) -> None:
        # Before the command partitions' ends are taken: what is announced from then on is past them.
        await self._announcements.start()
        consumer = self._new_consumer()
        try:
            await consumer.start()
            self._consumer = consumer
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            since_ms = int((time.time() - self._settings.live_window_s) * 1000)
            starts, ends = await self._window_starts(partitions, since_ms)
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
            self._catching_up = {tp: ends[tp] for tp in partitions if tp.topic in COMMAND_TOPICS}
            await self._pause_caught_up(consumer)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._follow(consumer), name="live-feed")
        log.info("live.feed_started", partitions=len(partitions), catching_up=len(self._catching_up))

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        await self._announcements.stop()

    async def _pause_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        for tp, end in list(self._catching_up.items()):
            if await consumer.position(tp) >= end:
                consumer.pause(tp)
                del self._catching_up[tp]

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        found: list[TopicPartition] = []
        for topic in LIVE_TOPICS:
            numbers = consumer.partitions_for_topic(topic)
            if numbers is None:
                await consumer.force_metadata_update()
                numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                log.warning("live.topic_missing", topic=topic)
                continue
            found += [TopicPartition(topic, n) for n in sorted(numbers)]
        return found

    async def _window_starts(
        self, partitions: list[TopicPartition], since_ms: int
    ) -> tuple[dict[Any, int], dict[Any, int]]:
        """The first offset of each partition whose record is no older than `since_ms`, and its end.

        Tansu's `offsets_for_times` answers 0 for any past time (ARCHITECTURE.md), so this searches the
        records' timestamps: back from the end in doubling steps, then by halves. A quiet partition
        costs one probe; one with n records in the window about 2 log2(n).
        """
        probe = self._new_consumer()
        await probe.start()
        try:
            begins = await probe.beginning_offsets(partitions)
            ends = await probe.end_offsets(partitions)
            starts = {
                tp: await _first_at_or_after(probe, tp, begins[tp], ends[tp], since_ms) for tp in partitions
            }
            return starts, ends
        finally:
            await probe.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=_FETCH_TIMEOUT_MS)
                if self._catching_up:
                    await self._pause_caught_up(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client reconnects by itself; keep following
                log.warning("live.fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(_ERROR_BACKOFF_S)
                continue
            for records in batches.values():
                for record in records:
                    live = live_record(record)
                    if live is not None:
                        self._hub.publish(live)


async def _timestamp_at(probe: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> int | None:
    """The timestamp of the first record at or after `offset`; None past the end."""
    probe.assign([tp])
    probe.seek(tp, offset)
    batch = await probe.getmany(tp, timeout_ms=_PROBE_TIMEOUT_MS, max_records=1)
    records = batch.get(tp, [])
    return int(records[0].timestamp) if records else None


async def _first_at_or_after(
    probe: AIOKafkaConsumer, tp: TopicPartition, begin: int, end: int, since_ms: int
) -> int:
    async def recent(offset: int) -> bool:
        stamp = await _timestamp_at(probe, tp, offset)
        return stamp is None or stamp >= since_ms

    # Invariant: `high` is recent (the end counts as recent); everything below `low` is not.
    high, step = end, 1
    low = begin
    while high > begin:
        candidate = max(begin, end - step)
        if not await recent(candidate):
            low = candidate + 1
            break
        high = candidate
        step *= 2
    while low < high:
        middle = (low + high) // 2
        if await recent(middle):
            high = middle
        else:
            low = middle + 1
    return high
