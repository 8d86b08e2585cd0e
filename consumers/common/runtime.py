"""What every consumer process shares: the broker, the subscriber options, and the per-message pipeline.

Per message: parse (malformed -> dead letter, committed), then run the idempotent handler, retrying
transient faults for as long as they last. Only after the handler returns does FastStream commit.
An unexpected exception is not committed: the message is sought back and redelivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from pydantic import BaseModel

from consumers.common.dead_letters import RawSender, dead_letter
from consumers.common.inbound import MalformedMessage, parse_envelope
from infra.dynamo.client import DynamoDBClient, dynamodb_client
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.retry import retry_transient
from infra.settings import Settings, get_settings
from infra.telemetry import configure_tracing, extract_trace_context, tracer
from schemas.envelope import Envelope

log = structlog.get_logger(__name__)
UNEXPECTED_ERROR_PAUSE_S = 1.0
PortsT = TypeVar("PortsT")


def make_broker(settings: Settings, service: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"ledgerflow-{service}",
        graceful_timeout=settings.consumer_graceful_timeout_s,
        enable_idempotence=settings.kafka_enable_idempotence,
        logger=None,
    )


def single_record(message: KafkaMessage) -> ConsumerRecord[bytes, bytes]:
    """The record behind a non-batch subscriber's message."""
    record = message.raw_message
    assert not isinstance(record, tuple), "batch subscribers are not used here"
    return record


def subscriber_options(settings: Settings, group: str) -> dict[str, Any]:
    return {
        "group_id": group,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        # A handler may wait out a long DynamoDB outage; the group must not evict it meanwhile.
        "max_poll_interval_ms": 30 * 60 * 1000,
        "max_partition_fetch_bytes": settings.kafka_max_message_bytes * 4,
    }


async def process_record(
    record: Any,
    *,
    group: str,
    accepted: Mapping[str, type[BaseModel]],
    handle: Callable[[Envelope[Any]], Awaitable[object]],
    sender: RawSender,
    settings: Settings,
) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        service=group, topic=record.topic, partition=record.partition, offset=record.offset
    )
    try:
        envelope = parse_envelope(record.value, accepted, max_bytes=settings.kafka_max_message_bytes)
    except MalformedMessage as exc:
        error = exc
        log.warning("message.dead_lettered", error=error.code, reason=error.reason)
        await retry_transient(
            lambda: dead_letter(sender, record, error, group),
            initial_backoff_s=settings.retry_initial_backoff_s,
            max_backoff_s=settings.retry_max_backoff_s,
        )
        return
    structlog.contextvars.bind_contextvars(
        # A command's own id, or for an event the command that caused it.
        command_id=str(envelope.causation_id or envelope.id),
        account_id=envelope.account_id,
        message_type=envelope.type,
    )
    context = extract_trace_context(record.headers or ())
    with tracer().start_as_current_span(f"{group} {envelope.type}", context=context) as span:
        structlog.contextvars.bind_contextvars(trace_id=format(span.get_span_context().trace_id, "032x"))
        try:
            await retry_transient(
                lambda: handle(envelope),
                initial_backoff_s=settings.retry_initial_backoff_s,
                max_backoff_s=settings.retry_max_backoff_s,
            )
        except Exception:
            # Not malformed, not transient: a bug or an unforeseen fault. The message is not committed;
            # FastStream seeks back to it, and the pause keeps the redelivery from spinning.
            log.exception("message.failed")
            await asyncio.sleep(UNEXPECTED_ERROR_PAUSE_S)
            raise


BuildPorts = Callable[[Settings, DynamoDBClient, KafkaPublisher], Awaitable[PortsT]]
# The payload models a subscriber accepts: fixed, or chosen per record (e.g. by its topic).
Accepted = (
    Mapping[str, type[BaseModel]] | Callable[[ConsumerRecord[bytes, bytes]], Mapping[str, type[BaseModel]]]
)


class ConsumerRuntime(Generic[PortsT]):
    """One consumer process: settings, logging, tracing, broker and app, and the ports its lifespan builds.

    Each `consumers/<name>/app.py` creates one, declares its subscribers on `runtime.broker` and hands
    each record to `runtime.process`; `faststream run consumers.<name>.app:app` runs it.
    """

    def __init__(self, group: str, build_ports: BuildPorts[PortsT]) -> None:
        self.group = group
        self.settings = get_settings()
        configure_logging(self.settings, group)
        configure_tracing(group)
        self.broker = make_broker(self.settings, group)
        self.app = FastStream(self.broker, lifespan=self._lifespan)
        self._build_ports = build_ports
        # Set by the lifespan, before any subscriber starts.
        self.ports: PortsT
        self.publisher: KafkaPublisher

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        async with dynamodb_client(self.settings) as client:
            producer = make_producer(self.settings, f"ledgerflow-{self.group}")
            await producer.start()
            try:
                self.publisher = KafkaPublisher(producer)
                self.ports = await self._build_ports(self.settings, client, self.publisher)
                yield
            finally:
                await producer.stop()

    def subscriber_options(self, group: str | None = None, *, batch: bool = True) -> dict[str, Any]:
        options = subscriber_options(self.settings, group or self.group)
        if batch:
            options |= {
                "batch": True,
                "max_records": self.settings.kafka_batch_max_records,
                "batch_timeout_ms": self.settings.kafka_fetch_max_wait_ms,
            }
        return options

    async def process(
        self,
        message: KafkaMessage,
        accepted: Accepted,
        handle: Callable[[Envelope[Any]], Awaitable[object]],
    ) -> None:
        """Handles a fetched batch: each partition's records in order, the partitions concurrently.

        FastStream commits only after this returns, i.e. after every record of the batch is done. If one
        record fails unexpectedly the others are cancelled and the whole batch is sought back and
        redelivered; records already handled are then recognised as duplicates and only republished.
        """
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        by_partition: dict[tuple[str, int], list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            by_partition.setdefault((record.topic, record.partition), []).append(record)

        async def in_order(partition_records: list[ConsumerRecord[bytes, bytes]]) -> None:
            for record in partition_records:
                await process_record(
                    record,
                    group=self.group,
                    accepted=accepted(record) if callable(accepted) else accepted,
                    handle=handle,
                    sender=self.publisher,
                    settings=self.settings,
                )

        if len(by_partition) == 1:
            await in_order(next(iter(by_partition.values())))
            return
        async with asyncio.TaskGroup() as group:
            for partition_records in by_partition.values():
                # Each task gets a copy of the context, so log bindings do not leak across partitions.
                group.create_task(in_order(partition_records))
