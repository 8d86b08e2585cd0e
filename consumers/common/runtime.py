"""What every consumer process shares: the broker, the subscriber options, and the per-message pipeline.

Per message: parse (malformed -> dead letter, committed), then run the idempotent handler, retrying
transient faults for as long as they last. Only after the handler returns does FastStream commit.
A handler that keeps failing otherwise (a bug) is given up after `handler_max_attempts`: the message is
dead-lettered and, where an account's order matters, the account quarantined (consumers.common.quarantine).
Anything else unexpected is not committed: the message is sought back and redelivered.

Ledger, trading and portfolio settle a fetch's records together by default (`settle_mode=batched`,
`process_partition` per partition, whose runs `CombinedSettle` settles as one): parsing and the
quarantine gate stay per record, and a batch that fails for a reason other than a transient fault is
handled again record by record through the path above.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from prometheus_client import REGISTRY
from pydantic import BaseModel

from consumers.common import metrics
from consumers.common.attempts import HandlerGaveUp, attempt_bounded
from consumers.common.combine import CombinedSettle, SettleBatch
from consumers.common.dead_letters import RawSender, dead_letter
from consumers.common.inbound import MalformedMessage, parse_envelope
from consumers.common.quarantine import (
    ACCOUNT_QUARANTINED,
    HANDLE,
    HANDLER_ERROR,
    QUARANTINE_HEADER,
    AccountGate,
    Admission,
    QuarantineHead,
    position,
)
from consumers.common.settle import Inbound
from consumers.registry import AppSpec
from infra.dynamo.client import DynamoDBClient, dynamodb_client
from infra.dynamo.quarantine import DynamoQuarantineStore
from infra.kafka.holes import HoleFiller, hole_reader
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.retry import retry_transient
from infra.settings import Settings, get_settings
from infra.telemetry import configure_tracing, extract_trace_context, settlement_span, tracer
from schemas.catalogue import TOPIC_MESSAGES
from schemas.envelope import Envelope

log = structlog.get_logger(__name__)
UNEXPECTED_ERROR_PAUSE_S = 1.0
PortsT = TypeVar("PortsT")
T = TypeVar("T")


class InjectedFault(Exception):
    """Raised for `LEDGERFLOW_FAULT_INJECT_ACCOUNT`'s messages (tests only): a stand-in for a handler bug."""


class _NewPartitions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions new to this process may carry accounts another process quarantined a moment ago, and
    continue where another process left them."""

    def __init__(self, on_assigned: Callable[[], None], holes: HoleFiller) -> None:
        self._on_assigned = on_assigned
        self._holes = holes

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._holes.forget(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._holes.forget(assigned)
        self._on_assigned()


def make_broker(settings: Settings, service: str, *, observed: bool = False) -> KafkaBroker:
    """`observed`: FastStream's Prometheus middleware counts every fetched batch (received, processed,
    latency, exceptions; `faststream_*`) and its telemetry middleware gives each a span, as the
    consumers want."""
    middlewares = (
        [KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service), KafkaTelemetryMiddleware()]
        if observed
        else []
    )
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"ledgerflow-{service}",
        graceful_timeout=settings.consumer_graceful_timeout_s,
        enable_idempotence=settings.kafka_enable_idempotence,
        logger=None,
        middlewares=middlewares,
    )


@asynccontextmanager
async def metrics_served(settings: Settings, spec: AppSpec) -> AsyncIterator[None]:
    """The process's metrics on its port (`LEDGERFLOW_METRICS_PORT`, else its registry entry's) while
    the app runs; port 0 serves none."""
    port = settings.metrics_port if settings.metrics_port is not None else spec.metrics_port
    if port == 0:
        yield
        return
    server = metrics.serve(port, settings.metrics_addr)
    log.info("metrics.serving", url=f"http://{settings.metrics_addr}:{port}/metrics")
    try:
        yield
    finally:
        server.shutdown()


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
    gate: AccountGate | None = None,
) -> None:
    envelope = await _parse(record, group=group, accepted=accepted, sender=sender, settings=settings)
    if envelope is None:
        return
    structlog.contextvars.bind_contextvars(**_message_bindings(envelope))
    with trace.use_span(_command_span(group, record, envelope), end_on_exit=True) as span:
        structlog.contextvars.bind_contextvars(trace_id=format(span.get_span_context().trace_id, "032x"))
        async with _unexpected_failure():
            await _settle(
                record, envelope, group=group, handle=handle, sender=sender, settings=settings, gate=gate
            )


async def process_partition(
    records: Sequence[Any],
    *,
    group: str,
    accepted: Callable[[Any], Mapping[str, type[BaseModel]]],
    handle: Callable[[Envelope[Any]], Awaitable[object]],
    settle_batch: SettleBatch,
    sender: RawSender,
    settings: Settings,
    gate: AccountGate | None = None,
) -> None:
    """One partition's records in order, settled together where they can be (`settle_mode=batched`).

    Parsing and the quarantine gate stay per record: a malformed record is dead-lettered, a quarantined
    account's record parked, each as it comes. Consecutive records admitted plainly form a run, settled
    by one `settle_batch` call; a record the gate treats otherwise (parked, or redriven through its
    quarantine) first lets the run before it be settled, then goes its own way, so every account's
    records still take effect in order. A run that fails transiently is settled again whole (idempotent:
    what committed is found as duplicates). A run that fails otherwise is handled again one record at a
    time by the per-record path (bounded attempts, dead letter, quarantine): one poison command costs its
    own account, never the others.
    """
    run: list[tuple[Any, Envelope[Any], Span]] = []

    async def settle_run() -> None:
        if not run:
            return
        batch = list(run)
        run.clear()
        inbound = [
            Inbound(envelope, _inbound_bindings(record, envelope, span)) for record, envelope, span in batch
        ]
        try:
            for _, envelope, _ in batch:
                _inject_fault(envelope, settings)
            with settlement_span(group, [span for _, _, span in batch]):
                await _io(settings, lambda: settle_batch(inbound))
        except Exception as exc:
            metrics.count_retry("batch_fallback")
            log.warning(
                "batch.failed",
                error=type(exc).__name__,
                detail=str(exc)[:200],
                records=len(batch),
                exc_info=True,
            )
            for record, _, _ in batch:
                await process_record(
                    record,
                    group=group,
                    accepted=accepted(record),
                    handle=handle,
                    sender=sender,
                    settings=settings,
                    gate=gate,
                )
        finally:
            for _, _, span in batch:
                span.end()

    for record in records:
        envelope = await _parse(
            record, group=group, accepted=accepted(record), sender=sender, settings=settings
        )
        if envelope is None:
            continue
        admission = await _admit(gate, record, envelope.account_id, settings)
        if admission is HANDLE:
            run.append((record, envelope, _command_span(group, record, envelope)))
            continue
        await settle_run()
        structlog.contextvars.bind_contextvars(**_message_bindings(envelope))
        async with _unexpected_failure():
            if admission.park_token is not None:
                await _park(
                    record, envelope, admission.park_token, group=group, sender=sender, settings=settings
                )
            else:
                await _handle_admitted(
                    record,
                    envelope,
                    admission,
                    group=group,
                    handle=handle,
                    sender=sender,
                    settings=settings,
                    gate=gate,
                )
    await settle_run()


async def _parse(
    record: Any, *, group: str, accepted: Mapping[str, type[BaseModel]], sender: RawSender, settings: Settings
) -> Envelope[Any] | None:
    """The record's envelope, or None once a malformed record is dead-lettered."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        service=group, topic=record.topic, partition=record.partition, offset=record.offset
    )
    try:
        return parse_envelope(record.value, accepted, max_bytes=settings.kafka_max_message_bytes)
    except MalformedMessage as exc:
        error = exc
        log.warning("message.dead_lettered", error=error.code, reason=error.reason)
        await _io(settings, lambda: dead_letter(sender, record, group, code=error.code, reason=error.reason))
        return None


def _command_span(group: str, record: Any, envelope: Envelope[Any]) -> Span:
    """The span of one command's settling, the child of the publish that carried it (its headers)."""
    context = extract_trace_context(record.headers or ())
    return tracer().start_span(f"{group} {envelope.type}", context=context, kind=SpanKind.CONSUMER)


def _message_bindings(envelope: Envelope[Any]) -> dict[str, str]:
    return {
        # A command's own id, or for an event the command that caused it.
        "command_id": str(envelope.causation_id or envelope.id),
        "account_id": envelope.account_id,
        "message_type": envelope.type,
    }


def _inbound_bindings(record: Any, envelope: Envelope[Any], span: Span) -> dict[str, object]:
    return {
        **_message_bindings(envelope),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "trace_id": format(span.get_span_context().trace_id, "032x"),
    }


@asynccontextmanager
async def _unexpected_failure() -> AsyncIterator[None]:
    try:
        yield
    except Exception:
        # Not malformed, not transient: a bug or an unforeseen fault. The message is not committed;
        # FastStream seeks back to it, and the pause keeps the redelivery from spinning.
        log.exception("message.failed")
        await asyncio.sleep(UNEXPECTED_ERROR_PAUSE_S)
        raise


async def _settle(
    record: Any,
    envelope: Envelope[Any],
    *,
    group: str,
    handle: Callable[[Envelope[Any]], Awaitable[object]],
    sender: RawSender,
    settings: Settings,
    gate: AccountGate | None,
) -> None:
    """Parks the message, or handles it; gives up on it (dead letter, quarantine) after bounded attempts."""
    admission = (
        HANDLE if gate is None else await _io(settings, lambda: gate.admit(record, envelope.account_id))
    )
    if admission.park_token is not None:
        await _park(record, envelope, admission.park_token, group=group, sender=sender, settings=settings)
        return
    await _handle_admitted(
        record, envelope, admission, group=group, handle=handle, sender=sender, settings=settings, gate=gate
    )


async def _admit(gate: AccountGate | None, record: Any, account_id: str, settings: Settings) -> Admission:
    return HANDLE if gate is None else await _io(settings, lambda: gate.admit(record, account_id))


async def _park(
    record: Any, envelope: Envelope[Any], token: str, *, group: str, sender: RawSender, settings: Settings
) -> None:
    log.warning("message.parked", quarantine=token)
    reason = (
        f"account {envelope.account_id} is quarantined in group {group}; "
        "release: ledgerflow dlq redrive --account"
    )
    await _io(
        settings,
        lambda: dead_letter(
            sender,
            record,
            group,
            code=ACCOUNT_QUARANTINED,
            reason=reason,
            extra=[(QUARANTINE_HEADER, token.encode())],
        ),
    )


async def _handle_admitted(
    record: Any,
    envelope: Envelope[Any],
    admission: Admission,
    *,
    group: str,
    handle: Callable[[Envelope[Any]], Awaitable[object]],
    sender: RawSender,
    settings: Settings,
    gate: AccountGate | None,
) -> None:
    try:
        await attempt_bounded(
            lambda: _call(handle, envelope, settings),
            max_attempts=settings.handler_max_attempts,
            initial_backoff_s=settings.retry_initial_backoff_s,
            max_backoff_s=settings.retry_max_backoff_s,
        )
    except HandlerGaveUp as gave_up:
        await _give_up(
            record, envelope, gave_up, admission, group=group, sender=sender, settings=settings, gate=gate
        )
        return
    if gate is not None:
        await _io(settings, lambda: gate.completed(record, envelope.account_id, admission))


async def _give_up(
    record: Any,
    envelope: Envelope[Any],
    gave_up: HandlerGaveUp,
    admission: Admission,
    *,
    group: str,
    sender: RawSender,
    settings: Settings,
    gate: AccountGate | None,
) -> None:
    # Quarantine first, then the letter: if the process dies in between, the redelivered message finds the
    # quarantine and is parked, rather than dead-lettered a second time as a fresh failure.
    extra = [
        ("x-error-type", type(gave_up.cause).__name__.encode()),
        ("x-error-attempts", str(gave_up.attempts).encode()),
    ]
    if gate is not None:
        head = QuarantineHead(
            envelope.account_id, position(record), str(envelope.causation_id or envelope.id), gave_up.summary
        )
        token = await _io(settings, lambda: gate.quarantine(record, head, admission))
        extra.append((QUARANTINE_HEADER, token.encode()))
    log.error("message.dead_lettered", error=HANDLER_ERROR, reason=gave_up.summary, attempts=gave_up.attempts)
    await _io(
        settings,
        lambda: dead_letter(sender, record, group, code=HANDLER_ERROR, reason=gave_up.summary, extra=extra),
    )


async def _call(
    handle: Callable[[Envelope[Any]], Awaitable[object]], envelope: Envelope[Any], settings: Settings
) -> object:
    _inject_fault(envelope, settings)
    return await handle(envelope)


def _inject_fault(envelope: Envelope[Any], settings: Settings) -> None:
    if settings.fault_inject_account is not None and envelope.account_id == settings.fault_inject_account:
        raise InjectedFault(f"injected for account {envelope.account_id} (LEDGERFLOW_FAULT_INJECT_ACCOUNT)")


async def _io(settings: Settings, operation: Callable[[], Awaitable[T]]) -> T:
    """The runtime's own writes (dead letters, quarantine) wait out transient faults like handlers do."""
    return await retry_transient(
        operation,
        initial_backoff_s=settings.retry_initial_backoff_s,
        max_backoff_s=settings.retry_max_backoff_s,
        on_retry=_transient_retry,
    )


def _transient_retry() -> None:
    metrics.count_retry("transient")


BuildPorts = Callable[[Settings, DynamoDBClient, KafkaPublisher], Awaitable[PortsT]]


class ConsumerRuntime(Generic[PortsT]):
    """One consumer process: settings, logging, tracing, broker and app, and the ports its lifespan builds.

    Each `consumers/<name>/app.py` creates one from its registry entry (consumers/registry.py), declares
    its subscriber on `runtime.broker` for the entry's topics and hands each fetch to `runtime.process`;
    `faststream run consumers.<name>.app:app` runs it. The entry's `ordered` says whether an account's
    messages must take effect in order (see the module doc); without it a message given up on is only
    dead-lettered, and the account's others go on. Each record is parsed against the types the contract
    puts on its topic (schemas.catalogue).
    """

    def __init__(self, spec: AppSpec, build_ports: BuildPorts[PortsT]) -> None:
        self.spec = spec
        self.group = spec.name
        self._quarantine = spec.ordered
        self.settings = get_settings()
        configure_logging(self.settings, self.group)
        configure_tracing(self.group)
        self.broker = make_broker(self.settings, self.group, observed=True)
        self.app = FastStream(self.broker, lifespan=self._lifespan)
        self._build_ports = build_ports
        self.holes = HoleFiller(
            lambda: hole_reader(
                self.settings.kafka_bootstrap_servers,
                f"ledgerflow-{self.group}-holes",
                self.settings.kafka_max_message_bytes * 4,
            ),
            wait_s=self.settings.kafka_hole_wait_s,
            on_hole=metrics.count_hole,
        )
        # Set by the lifespan, before any subscriber starts.
        self.ports: PortsT
        self.publisher: KafkaPublisher
        self.gate: AccountGate | None = None

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        async with metrics_served(self.settings, self.spec), dynamodb_client(self.settings) as client:
            producer = make_producer(self.settings, f"ledgerflow-{self.group}")
            # A consumer (re)started while the broker is down waits for it, as the API does, instead of
            # exiting: nothing may be left to restart it (the chaos suite restarts a killed consumer once).
            await retry_transient(producer.start, max_backoff_s=2)
            try:
                self.publisher = KafkaPublisher(producer)
                if self._quarantine:
                    store = DynamoQuarantineStore(client, self.settings.dynamodb_table)
                    self.gate = AccountGate(store, self.group, refresh_s=self.settings.quarantine_refresh_s)
                self.ports = await self._build_ports(self.settings, client, self.publisher)
                yield
            finally:
                await self.holes.stop()
                await producer.stop()

    def subscriber_options(self, group: str | None = None, *, batch: bool = True) -> dict[str, Any]:
        options = subscriber_options(self.settings, group or self.group)
        # The gate exists only once the lifespan ran, and assignments come after that.
        options["listener"] = _NewPartitions(
            lambda: self.gate.invalidate() if self.gate else None, self.holes
        )
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
        handle: Callable[[Envelope[Any]], Awaitable[object]],
        settle_batch: SettleBatch | None = None,
    ) -> None:
        """Handles a fetched batch: each partition's records in order, the partitions concurrently.

        With `settle_batch` and `settle_mode=batched`, the partitions' runs are settled together
        (`CombinedSettle`); with `settle_mode=partition`, each partition's on its own
        (`process_partition`); otherwise one at a time by `handle`.

        FastStream commits only after this returns, i.e. after every record of the batch is done. If one
        record fails unexpectedly the others are cancelled and the whole batch is sought back and
        redelivered; records already handled are then recognised as duplicates and only republished.
        """
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        by_partition: dict[tuple[str, int], list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            by_partition.setdefault((record.topic, record.partition), []).append(record)
        consumer = getattr(message, "consumer", None)
        if consumer is not None:
            await self._fill_holes(consumer, by_partition)

        def accepted_for(record: ConsumerRecord[bytes, bytes]) -> Mapping[str, type[BaseModel]]:
            return TOPIC_MESSAGES[record.topic]

        # The partitions' runs are settled together: one read and one write per fetch, not per partition.
        mode = self.settings.settle_mode
        combined = (
            CombinedSettle(settle_batch, len(by_partition))
            if settle_batch is not None and mode == "batched"
            else None
        )

        async def in_order(partition_records: list[ConsumerRecord[bytes, bytes]]) -> None:
            if settle_batch is not None and mode != "one":
                try:
                    await process_partition(
                        partition_records,
                        group=self.group,
                        accepted=accepted_for,
                        handle=handle,
                        settle_batch=combined or settle_batch,
                        sender=self.publisher,
                        settings=self.settings,
                        gate=self.gate,
                    )
                finally:
                    if combined is not None:
                        combined.partition_done()
                return
            for record in partition_records:
                await process_record(
                    record,
                    group=self.group,
                    accepted=accepted_for(record),
                    handle=handle,
                    sender=self.publisher,
                    settings=self.settings,
                    gate=self.gate,
                )

        with metrics.fetched(by_partition, consumer):
            if len(by_partition) == 1:
                await in_order(next(iter(by_partition.values())))
                return
            async with asyncio.TaskGroup() as group:
                for partition_records in by_partition.values():
                    # Each task gets a copy of the context, so log bindings do not leak across partitions.
                    group.create_task(in_order(partition_records))

    async def _fill_holes(
        self, consumer: Any, by_partition: dict[tuple[str, int], list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Adds to each partition's records those a hole in its offsets hid (infra/kafka/holes.py).

        One partition after another: without a hole, `complete` does no I/O, so the hot path makes no
        task per partition."""
        for key, records in by_partition.items():
            by_partition[key] = await self.holes.complete(consumer, TopicPartition(*key), records)
