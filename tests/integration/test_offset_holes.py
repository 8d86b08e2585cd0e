"""A consumer's fetch that stepped over records (Tansu's produce race) gets them from the real broker.

The race itself is timing-dependent (measured in infra/kafka/holes.py), so the fetch that stepped over
records is made here by leaving records out of a real fetch; the hidden records, and an empty hole, are
then read from the real broker by the side reader the consumers use.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka.holes import HoleFiller, hole_reader
from infra.local.services import ServiceEndpoints
from tests.support.kafka import send_raw

pytestmark = pytest.mark.integration


class _Committed:
    """The group's committed offset, as the consumer's group coordinator would answer."""

    def __init__(self, offset: int | None) -> None:
        self.offset = offset

    async def committed(self, partition: TopicPartition) -> int | None:
        return self.offset


@pytest.fixture
async def topic(services: ServiceEndpoints) -> AsyncIterator[TopicPartition]:
    name = f"holes-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    await send_raw(services.kafka_bootstrap_servers, name, "k", [f"{i}".encode() for i in range(10)])
    yield TopicPartition(name, 0)


Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def _fetch_all(bootstrap: str, partition: TopicPartition) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        records: list[Record] = []
        while len(records) < 10:
            records += (await consumer.getmany(partition, timeout_ms=500)).get(partition, [])
        return records
    finally:
        await consumer.stop()


@asynccontextmanager
async def _filler(services: ServiceEndpoints, wait_s: float) -> AsyncIterator[tuple[HoleFiller, list[str]]]:
    """A hole filler reading the real broker, and the outcomes it reports; stopped afterwards."""
    bootstrap = services.kafka_bootstrap_servers
    outcomes: list[str] = []
    filler = HoleFiller(
        lambda: hole_reader(bootstrap, "test-holes", 1 << 20), wait_s=wait_s, on_hole=outcomes.append
    )
    try:
        yield filler, outcomes
    finally:
        await filler.stop()


async def test_records_a_fetch_stepped_over_are_read_again_in_offset_order(
    services: ServiceEndpoints, topic: TopicPartition
) -> None:
    fetched = await _fetch_all(services.kafka_bootstrap_servers, topic)
    async with _filler(services, 5.0) as (filler, outcomes):
        # The committed offset was 1 and the fetch showed 3, 4, 7, 8, 9: offsets 1, 2, 5 and 6 were hidden.
        seen = [fetched[i] for i in (3, 4, 7, 8, 9)]
        completed = await filler.complete(_Committed(1), topic, seen)
        assert [r.offset for r in completed] == list(range(1, 10))
        assert [r.value for r in completed] == [f"{i}".encode() for i in range(1, 10)]
        assert outcomes == ["filled"]
        # The next fetch follows on from 10: nothing to read again.
        assert await filler.complete(_Committed(None), topic, []) == []


async def test_a_hole_that_stays_empty_is_given_up_after_the_wait(
    services: ServiceEndpoints, topic: TopicPartition
) -> None:
    fetched = await _fetch_all(services.kafka_bootstrap_servers, topic)
    async with _filler(services, 0.5) as (filler, outcomes):
        assert await filler.complete(_Committed(0), topic, fetched) == fetched
        # Offsets past the log's end stand for a produce that took its offsets and never wrote them.
        later = ConsumerRecord(topic.topic, 0, 12, 0, 0, b"k", b"late", None, 1, 4, ())
        started = time.monotonic()
        completed = await filler.complete(_Committed(None), topic, [later])
        assert completed == [later]
        assert outcomes == ["empty"]
        assert 0.5 <= time.monotonic() - started < 3
