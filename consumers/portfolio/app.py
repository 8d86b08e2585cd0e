"""The portfolio consumer: projects `events.order` into positions and publishes `events.portfolio`.

Run alone with `faststream run consumers.portfolio.app:app`. Rebuildable: with this consumer stopped,
drop an account's projection (`DynamoPortfolioStore.clear_account`), reset the `portfolio` group to the
earliest offsets, start it again; the replay yields the same positions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import make_broker, process_record, single_record, subscriber_options
from consumers.portfolio.bootstrap import build_portfolio_ports
from consumers.portfolio.handlers import PortfolioPorts, project_order_event
from infra.dynamo.client import dynamodb_client
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.settings import get_settings
from infra.telemetry import configure_tracing
from schemas.envelope import Envelope
from schemas.events import ORDER_EVENT_TYPES
from schemas.topics import ORDER_EVENTS

GROUP = "portfolio"
settings = get_settings()
configure_logging(settings, GROUP)
configure_tracing(GROUP)
broker = make_broker(settings, GROUP)


class _Runtime:
    ports: PortfolioPorts
    publisher: KafkaPublisher


runtime = _Runtime()


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    async with dynamodb_client(settings) as client:
        producer = make_producer(settings, f"ledgerflow-{GROUP}")
        await producer.start()
        try:
            runtime.publisher = KafkaPublisher(producer)
            runtime.ports = build_portfolio_ports(
                DynamoPortfolioStore(client, settings.dynamodb_table), runtime.publisher
            )
            yield
        finally:
            await producer.stop()


app = FastStream(broker, lifespan=lifespan)


async def _project(envelope: Envelope[Any]) -> object:
    return await project_order_event(envelope, runtime.ports)


@broker.subscriber(ORDER_EVENTS, **subscriber_options(settings, GROUP))
async def on_order_event(msg: KafkaMessage) -> None:
    await process_record(
        single_record(msg),
        group=GROUP,
        accepted=ORDER_EVENT_TYPES,
        handle=_project,
        sender=runtime.publisher,
        settings=settings,
    )
