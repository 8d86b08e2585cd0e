"""The status consumer: projects commands and outcome events into command status.

Run alone with `faststream run consumers.status.app:app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from consumers.common.inbound import MalformedMessage, parse_envelope
from consumers.common.runtime import make_broker, process_record, single_record, subscriber_options
from consumers.status.projection import StatusStore, accepted_from_command, completed_from_event
from infra.dynamo.client import dynamodb_client
from infra.dynamo.status_store import DynamoStatusStore
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.retry import retry_transient
from infra.settings import get_settings
from infra.telemetry import configure_tracing
from schemas.commands import COMMAND_TYPES
from schemas.envelope import Envelope
from schemas.events import OUTCOME_EVENT_TYPES
from schemas.topics import BALANCE_EVENTS, COMMAND_TOPICS, ORDER_EVENTS

GROUP = "status"
settings = get_settings()
configure_logging(settings, GROUP)
configure_tracing(GROUP)
broker = make_broker(settings, GROUP)
log = structlog.get_logger(__name__)


class _Runtime:
    store: StatusStore
    publisher: KafkaPublisher


runtime = _Runtime()


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    async with dynamodb_client(settings) as client:
        producer = make_producer(settings, f"ledgerflow-{GROUP}")
        await producer.start()
        try:
            runtime.store = DynamoStatusStore(client, settings.dynamodb_table)
            runtime.publisher = KafkaPublisher(producer)
            yield
        finally:
            await producer.stop()


app = FastStream(broker, lifespan=lifespan)


async def _record_outcome(envelope: Envelope[Any]) -> None:
    await runtime.store.record_completed(completed_from_event(envelope))


@broker.subscriber(BALANCE_EVENTS, ORDER_EVENTS, **subscriber_options(settings, GROUP))
async def on_outcome_event(msg: KafkaMessage) -> None:
    await process_record(
        single_record(msg),
        group=GROUP,
        accepted=OUTCOME_EVENT_TYPES,
        handle=_record_outcome,
        sender=runtime.publisher,
        settings=settings,
    )


@broker.subscriber(*COMMAND_TOPICS, **subscriber_options(settings, f"{GROUP}-commands"))
async def on_command(msg: KafkaMessage) -> None:
    record = single_record(msg)
    try:
        envelope = parse_envelope(record.value, COMMAND_TYPES, max_bytes=settings.kafka_max_message_bytes)
    except MalformedMessage as error:
        # The consumer that owns the topic dead-letters it; a second copy would only confuse operators.
        log.info("status.command_skipped", topic=record.topic, offset=record.offset, error=error.code)
        return
    update = accepted_from_command(envelope, COMMAND_TYPES[envelope.type].KIND)
    await retry_transient(lambda: runtime.store.record_accepted(update))
