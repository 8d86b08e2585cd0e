"""What every consumer process shares: the broker, the subscriber options, and the per-message pipeline.

Per message: parse (malformed -> dead letter, committed), then run the idempotent handler, retrying
transient faults for as long as they last. Only after the handler returns does FastStream commit.
An unexpected exception is not committed: the message is sought back and redelivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from pydantic import BaseModel

from consumers.common.dead_letters import RawSender, dead_letter
from consumers.common.inbound import MalformedMessage, parse_envelope
from infra.retry import retry_transient
from infra.settings import Settings
from infra.telemetry import extract_trace_context, tracer
from schemas.envelope import Envelope

log = structlog.get_logger(__name__)
UNEXPECTED_ERROR_PAUSE_S = 1.0


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
