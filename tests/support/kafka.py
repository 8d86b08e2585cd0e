"""Direct Kafka access for tests: put bytes on a topic, read a topic back."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def send_raw(
    bootstrap: str,
    topic: str,
    key: str,
    values: list[bytes],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=key.encode(), headers=headers or [])
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, key: str | None = None) -> list[Any]:
    """Every record on the topic (optionally only one key's), read from the beginning of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        empty_polls = 0
        # Tansu's ListOffsets is not a reliable end marker, so read until the topic stays quiet.
        while empty_polls < 3:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch:
                empty_polls += 1
                continue
            empty_polls = 0
            for messages in batch.values():
                records.extend(m for m in messages if key is None or m.key == key.encode())
        return records
    finally:
        await consumer.stop()
