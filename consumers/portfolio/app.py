"""The portfolio consumer: projects `events.order` into positions and publishes `events.portfolio`.

Run alone with `faststream run consumers.portfolio.app:app`. Rebuildable: with this consumer stopped,
drop an account's projection (`DynamoPortfolioStore.clear_account`), reset the `portfolio` group to the
earliest offsets, start it again; the replay yields the same positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import ConsumerRuntime
from consumers.common.settle import Inbound
from consumers.portfolio.bootstrap import build_portfolio_ports
from consumers.portfolio.handlers import PortfolioPorts
from consumers.registry import PORTFOLIO
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.kafka.producer import KafkaPublisher
from infra.settings import Settings
from schemas.envelope import Envelope


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> PortfolioPorts:
    return build_portfolio_ports(DynamoPortfolioStore(client, settings.dynamodb_table), publisher)


runtime = ConsumerRuntime(PORTFOLIO, _ports)
broker, app = runtime.broker, runtime.app


async def _project(envelope: Envelope[Any]) -> object:
    return await runtime.ports.settle_one(envelope)


async def _project_batch(inbound: Sequence[Inbound]) -> object:
    return await runtime.ports.settle(inbound)


@broker.subscriber(*PORTFOLIO.reads, **runtime.subscriber_options())
async def on_order_event(msg: KafkaMessage) -> None:
    await runtime.process(msg, _project, _project_batch)
