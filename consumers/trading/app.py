"""The trading consumer: settles `commands.order` (market orders) against cash and holdings.

Run alone with `faststream run consumers.trading.app:app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import make_broker, process_record, single_record, subscriber_options
from consumers.trading.bootstrap import build_trading_ports
from consumers.trading.handlers import TradingPorts, settle_order
from infra.dynamo.client import dynamodb_client
from infra.dynamo.trading_store import DynamoTradingStore
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.settings import get_settings
from infra.telemetry import configure_tracing
from schemas.commands import PlaceOrder
from schemas.envelope import Envelope
from schemas.topics import ORDER_COMMANDS

GROUP = "trading"
settings = get_settings()
configure_logging(settings, GROUP)
configure_tracing(GROUP)
broker = make_broker(settings, GROUP)


class _Runtime:
    ports: TradingPorts
    publisher: KafkaPublisher


runtime = _Runtime()


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    async with dynamodb_client(settings) as client:
        producer = make_producer(settings, f"ledgerflow-{GROUP}")
        await producer.start()
        try:
            runtime.publisher = KafkaPublisher(producer)
            runtime.ports = build_trading_ports(
                settings, DynamoTradingStore(client, settings.dynamodb_table), runtime.publisher
            )
            yield
        finally:
            await producer.stop()


app = FastStream(broker, lifespan=lifespan)


async def _settle(envelope: Envelope[Any]) -> object:
    return await settle_order(envelope, runtime.ports)


@broker.subscriber(ORDER_COMMANDS, **subscriber_options(settings, GROUP))
async def on_order(msg: KafkaMessage) -> None:
    await process_record(
        single_record(msg),
        group=GROUP,
        accepted={PlaceOrder.TYPE: PlaceOrder},
        handle=_settle,
        sender=runtime.publisher,
        settings=settings,
    )
