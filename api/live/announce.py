"""Accepted commands reach every API worker's hub through Redis, not by each worker reading the command
topics back from Kafka.

The worker that accepted a command knows everything its hub record holds once the broker acknowledged
it: the command's bytes, its topic, partition, offset and timestamp. It announces that on one Redis
channel; every worker (itself included) subscribes and hands what it hears to its hub. Reading the three
command topics back cost Tansu about as much CPU per POST as the rest of the intake put together
(README, Performance); a Redis message costs a fraction of that.

The request path does not wait for it: announcements queue in the worker and go out in one PUBLISH per
batch, whatever gathered while the previous one was in flight, so under load a POST costs a small part
of a round trip and its own round trip stays the admission script's alone.

Redis pub/sub delivers at most once. What a worker misses while its subscription reconnects, or what a
worker could not publish, is an `accepted` step only: the outcome still comes from Kafka, and the poll
answers from the accepted record the admission wrote.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Final

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis

from api.live.hub import LiveHub, LiveRecord
from infra.tasks import cancel_and_wait
from producers.commands import Placed

log = structlog.get_logger(__name__)

CHANNEL: Final = b"ledgerflow:live:accepted"
_MAX_QUEUED: Final = 10_000
_MAX_BATCH: Final = 500
_RETRY_S: Final = 1.0

ANNOUNCEMENTS = Counter(
    "ledgerflow_live_announcements_total",
    "Accepted commands announced to the API workers, by result (sent, dropped: queue full or Redis failed)",
    ["result"],
)


def accepted_record(placed: Placed, account_id: str, command_id: uuid.UUID, value: bytes) -> LiveRecord:
    return LiveRecord(
        topic=placed.topic,
        partition=placed.partition,
        offset=placed.offset,
        timestamp_ms=placed.timestamp,
        account_id=account_id,
        command_id=command_id,
        value=value,
    )


# One record: a header line of tab-separated fields, then exactly `length` bytes of the command.
def encode(records: Iterable[LiveRecord]) -> bytes:
    parts: list[bytes] = []
    for r in records:
        header = f"{r.topic}\t{r.partition}\t{r.offset}\t{r.timestamp_ms}\t{r.account_id}\t{r.command_id}"
        parts += [f"{header}\t{len(r.value)}\n".encode(), r.value]
    return b"".join(parts)


def decode(message: bytes) -> list[LiveRecord]:
    """The records of one announcement; ValueError if it is not one."""
    records: list[LiveRecord] = []
    at = 0
    while at < len(message):
        end = message.index(b"\n", at)
        topic, partition, offset, timestamp, account, command, length = message[at:end].decode().split("\t")
        start, at = end + 1, end + 1 + int(length)
        if at > len(message):
            raise ValueError("announcement cut short")
        records.append(
            LiveRecord(
                topic=topic,
                partition=int(partition),
                offset=int(offset),
                timestamp_ms=int(timestamp),
                account_id=account,
                command_id=uuid.UUID(command),
                value=message[start:at],
            )
        )
    return records


class Announcer:
    """Publishes this worker's accepted commands in batches, one PUBLISH in flight at a time."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queue: asyncio.Queue[LiveRecord] = asyncio.Queue(_MAX_QUEUED)
        self._task: asyncio.Task[None] | None = None

    def announce(self, record: LiveRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            ANNOUNCEMENTS.labels("dropped").inc()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-announcer")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._redis.publish(CHANNEL, encode(batch))
                ANNOUNCEMENTS.labels("sent").inc(len(batch))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the statuses still settle; only the `accepted` step is missed
                ANNOUNCEMENTS.labels("dropped").inc(len(batch))
                log.warning("live.announce_failed", error=type(exc).__name__, records=len(batch))


class Announcements:
    """Follows the channel and hands each announced record to the hub, resubscribing after a failure."""

    def __init__(self, redis: Redis, hub: LiveHub) -> None:
        self._redis = redis
        self._hub = hub
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Returns once subscribed: every command acknowledged from then on reaches the hub."""
        subscribed = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(subscribed), name="live-announcements")
        try:
            await subscribed
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self, subscribed: asyncio.Future[None]) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not subscribed.done():
                        subscribed.set_result(None)
                    async for message in pubsub.listen():
                        self._hand_over(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not subscribed.done():
                    subscribed.set_exception(exc)
                    return
                log.warning("live.announcements_lost", error=type(exc).__name__)
                await asyncio.sleep(_RETRY_S)

    def _hand_over(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            records = decode(data)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("live.unreadable_announcement", error=str(exc))
            return
        for record in records:
            self._hub.publish(record)
