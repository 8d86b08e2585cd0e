"""One Kafka producer adapter for the API and the consumers: keyed, acknowledged, trace-carrying."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from infra.settings import Settings
from infra.telemetry import inject_trace_headers, publish_span
from schemas.envelope import Envelope

Headers = list[tuple[str, bytes]]
JSON_HEADERS: Headers = [("content-type", b"application/json")]


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=1,
        # Room above the accepted-message limit, so an oversized message can still be dead-lettered whole.
        max_request_size=settings.kafka_max_message_bytes * 4,
        request_timeout_ms=15_000,
    )


def make_api_producer(settings: Settings) -> AIOKafkaProducer:
    """The intake's producer: every request awaits its own acknowledgement (acks=all), and requests
    arriving together share produce requests.

    aiokafka keeps one produce request in flight per broker; the sends that arrive meanwhile (one per
    concurrent POST) wait in per-partition batches and go together in the next request. `linger_ms`
    gives a quiet moment's sends a few ms to join them, and a larger batch holds a busy moment's.
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="ledgerflow-api",
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=settings.kafka_api_linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=settings.kafka_max_message_bytes * 4,
        request_timeout_ms=15_000,
    )


class KafkaPublisher:
    """Publishes and waits for the broker's acknowledgement of every message before returning."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(
        self, topic: str, key: str, value: bytes, headers: Headers | None = None
    ) -> RecordMetadata:
        with publish_span(topic, 1):
            return await self._producer.send_and_wait(
                topic,
                value=value,
                key=key.encode(),
                headers=[*JSON_HEADERS, *inject_trace_headers(), *(headers or [])],
            )

    async def send_exact(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        """Sends bytes and headers exactly as given (dead letters and redrives keep the original)."""
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)

    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None:
        await self._send_all(topic, [(e.account_id, e.to_bytes()) for e in events])

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None:
        await self._send_all(topic, [(key, v) for v in values])

    async def _send_all(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        with publish_span(topic, len(messages)):
            headers = [*JSON_HEADERS, *inject_trace_headers()]
            futures = [
                await self._producer.send(topic, value=value, key=key.encode(), headers=headers)
                for key, value in messages
            ]
            await asyncio.gather(*futures)
