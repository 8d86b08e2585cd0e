"""The status consumer: projects commands and outcome events into command status.

Run alone with `faststream run consumers.status.app:app`.
"""

from __future__ import annotations

from typing import Any

import structlog
from faststream.kafka.annotations import KafkaMessage

from consumers.common.inbound import MalformedMessage, parse_envelope
from consumers.common.runtime import ConsumerRuntime, single_record
from consumers.status.projection import StatusStore, accepted_from_command, completed_from_event
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.status_store import DynamoStatusStore
from infra.kafka.producer import KafkaPublisher
from infra.retry import retry_transient
from infra.settings import Settings
from schemas.commands import COMMAND_TYPES
from schemas.envelope import Envelope
from schemas.events import OUTCOME_EVENT_TYPES
from schemas.topics import BALANCE_EVENTS, COMMAND_TOPICS, ORDER_EVENTS

log = structlog.get_logger(__name__)


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> StatusStore:
    return DynamoStatusStore(client, settings.dynamodb_table)


# Each status item stands alone (one per command): a failing one need not hold back its account's others.
runtime = ConsumerRuntime("status", _ports, quarantine=False)
broker, app = runtime.broker, runtime.app


async def _record_outcome(envelope: Envelope[Any]) -> None:
    await runtime.ports.record_completed(completed_from_event(envelope))


@broker.subscriber(BALANCE_EVENTS, ORDER_EVENTS, **runtime.subscriber_options())
async def on_outcome_event(msg: KafkaMessage) -> None:
    await runtime.process(msg, OUTCOME_EVENT_TYPES, _record_outcome)


@broker.subscriber(*COMMAND_TOPICS, **runtime.subscriber_options("status-commands", batch=False))
async def on_command(msg: KafkaMessage) -> None:
    record = single_record(msg)
    try:
        envelope = parse_envelope(
            record.value, COMMAND_TYPES, max_bytes=runtime.settings.kafka_max_message_bytes
        )
    except MalformedMessage as error:
        # The consumer that owns the topic dead-letters it; a second copy would only confuse operators.
        log.info("status.command_skipped", topic=record.topic, offset=record.offset, error=error.code)
        return
    update = accepted_from_command(envelope, COMMAND_TYPES[envelope.type].KIND)
    await retry_transient(lambda: runtime.ports.record_accepted(update))
