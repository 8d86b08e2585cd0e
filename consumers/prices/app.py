"""The prices consumer: keeps the latest price of every asset (`ASSET#<SYM>/PRICE`) from `prices`.

Run alone with `faststream run consumers.prices.app:app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import make_broker, process_record, single_record, subscriber_options
from consumers.prices.handlers import PricePorts, record_price
from infra.dynamo.assets import DynamoAssets
from infra.dynamo.client import dynamodb_client
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.retry import retry_transient
from infra.settings import get_settings
from infra.telemetry import configure_tracing
from schemas.envelope import Envelope
from schemas.topics import PRICES
from schemas.trading import PRICE_TICK_TYPES

GROUP = "prices"
settings = get_settings()
configure_logging(settings, GROUP)
configure_tracing(GROUP)
broker = make_broker(settings, GROUP)


class _Runtime:
    ports: PricePorts
    publisher: KafkaPublisher


runtime = _Runtime()


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    async with dynamodb_client(settings) as client:
        producer = make_producer(settings, f"ledgerflow-{GROUP}")
        await producer.start()
        try:
            assets = DynamoAssets(client, settings.dynamodb_table)
            catalogue = await retry_transient(assets.catalogue)
            runtime.publisher = KafkaPublisher(producer)
            runtime.ports = PricePorts(
                store=assets, known_assets=frozenset(str(a["symbol"]) for a in catalogue)
            )
            yield
        finally:
            await producer.stop()


app = FastStream(broker, lifespan=lifespan)


async def _record(envelope: Envelope[Any]) -> object:
    return await record_price(envelope, runtime.ports)


@broker.subscriber(PRICES, **subscriber_options(settings, GROUP))
async def on_price_tick(msg: KafkaMessage) -> None:
    await process_record(
        single_record(msg),
        group=GROUP,
        accepted=PRICE_TICK_TYPES,
        handle=_record,
        sender=runtime.publisher,
        settings=settings,
    )
