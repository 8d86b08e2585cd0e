"""The trading consumer: fills market orders from `commands.order` at the latest price.

Run alone with `faststream run consumers.trading.app:app`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import ConsumerRuntime
from consumers.common.settle import Inbound
from consumers.registry import TRADING
from consumers.trading.bootstrap import build_trading_ports
from consumers.trading.handlers import TradingPorts
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.trading_store import DynamoTradingStore
from infra.kafka.producer import KafkaPublisher
from infra.settings import Settings
from schemas.envelope import Envelope


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> TradingPorts:
    return build_trading_ports(settings, DynamoTradingStore(client, settings.dynamodb_table), publisher)


runtime = ConsumerRuntime(TRADING, _ports)
broker, app = runtime.broker, runtime.app


async def _settle(envelope: Envelope[Any]) -> object:
    return await runtime.ports.settle_one(envelope)


async def _settle_batch(inbound: Sequence[Inbound]) -> object:
    return await runtime.ports.settle(inbound)


@broker.subscriber(*TRADING.reads, **runtime.subscriber_options())
async def on_order(msg: KafkaMessage) -> None:
    await runtime.process(msg, _settle, _settle_batch)
