"""Tansu throughput on its durable storage (s3:// on the local object server) vs memory. Asserts nothing.

    .venv/bin/python scripts/bench_kafka_storage.py [--messages 5000] [--size 500]

For each storage: start the local servers on free ports, produce `--messages` records of `--size` bytes
with acks=all (many in flight, as a busy intake would), then consume them all in a consumer group and
commit; print messages per second for both phases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.local.services import LocalServices

TOPIC = "bench"
PARTITIONS = 4


async def measure(bootstrap: str, messages: int, size: int) -> tuple[float, float]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()
    payload = os.urandom(size // 2).hex().encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        began = time.perf_counter()
        sent = [await producer.send(TOPIC, payload, key=str(i % 64).encode()) for i in range(messages)]
        await asyncio.gather(*sent)
        produce_s = time.perf_counter() - began
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id="bench",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        got = 0
        began = time.perf_counter()
        while got < messages:
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            got += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        consume_s = time.perf_counter() - began
    finally:
        await consumer.stop()
    return messages / produce_s, messages / consume_s


def run(storage: str, messages: int, size: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        services = LocalServices.beside(
            Path(tmp) / "logs", data_dir=Path(tmp) / "data" if storage == "durable" else None
        )
        with services:
            return asyncio.run(measure(services.endpoints.kafka_bootstrap_servers, messages, size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args()
    print(f"{args.messages} messages of {args.size} bytes, acks=all, {PARTITIONS} partitions")
    for storage in ("memory", "durable"):
        produced, consumed = run(storage, args.messages, args.size)
        print(f"{storage:>8}: produce {produced:8.0f} msg/s   consume+commit {consumed:8.0f} msg/s")


if __name__ == "__main__":
    main()
