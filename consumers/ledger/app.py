"""The ledger consumer: settles `commands.deposit` and `commands.withdrawal`.

Run alone with `faststream run consumers.ledger.app:app`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import ConsumerRuntime
from consumers.common.settle import Inbound
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.handlers import LedgerPorts
from consumers.registry import LEDGER
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.ledger_store import DynamoLedgerStore
from infra.kafka.producer import KafkaPublisher
from infra.settings import Settings
from schemas.envelope import Envelope


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> LedgerPorts:
    return build_ledger_ports(settings, DynamoLedgerStore(client, settings.dynamodb_table), publisher)


runtime = ConsumerRuntime(LEDGER, _ports)
broker, app = runtime.broker, runtime.app


async def _settle(envelope: Envelope[Any]) -> object:
    return await runtime.ports.settle_one(envelope)


async def _settle_batch(inbound: Sequence[Inbound]) -> object:
    return await runtime.ports.settle(inbound)


# Each topic carries one command type (schemas.catalogue): a Withdraw on commands.deposit is dead-lettered.
@broker.subscriber(*LEDGER.reads, **runtime.subscriber_options())
async def on_cash_commands(msg: KafkaMessage) -> None:
    await runtime.process(msg, _settle, _settle_batch)
