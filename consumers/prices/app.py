"""The prices consumer: keeps the latest price of every asset (`ASSET#<SYM>/PRICE`) from `prices`.

Run alone with `faststream run consumers.prices.app:app`.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import ConsumerRuntime
from consumers.prices.handlers import PricePorts, record_price
from consumers.registry import PRICE_RECORDER
from infra.dynamo.assets import DynamoAssets
from infra.dynamo.client import DynamoDBClient
from infra.kafka.producer import KafkaPublisher
from infra.retry import retry_transient
from infra.settings import Settings
from schemas.envelope import Envelope


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> PricePorts:
    assets = DynamoAssets(client, settings.dynamodb_table)
    catalogue = await retry_transient(assets.catalogue)
    return PricePorts(store=assets, known_assets=frozenset(str(a["symbol"]) for a in catalogue))


runtime = ConsumerRuntime(PRICE_RECORDER, _ports)
broker, app = runtime.broker, runtime.app


async def _record(envelope: Envelope[Any]) -> object:
    return await record_price(envelope, runtime.ports)


@broker.subscriber(*PRICE_RECORDER.reads, **runtime.subscriber_options())
async def on_price_tick(msg: KafkaMessage) -> None:
    await runtime.process(msg, _record)
