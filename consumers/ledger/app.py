"""The ledger consumer: settles `commands.deposit` and `commands.withdrawal`.

Run alone with `faststream run consumers.ledger.app:app`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from consumers.common.runtime import ConsumerRuntime
from consumers.common.settle import Inbound
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.handlers import LedgerPorts
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.ledger_store import DynamoLedgerStore
from infra.kafka.producer import KafkaPublisher
from infra.settings import Settings
from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS


async def _ports(settings: Settings, client: DynamoDBClient, publisher: KafkaPublisher) -> LedgerPorts:
    return build_ledger_ports(settings, DynamoLedgerStore(client, settings.dynamodb_table), publisher)


runtime = ConsumerRuntime("ledger", _ports)
broker, app = runtime.broker, runtime.app


async def _settle(envelope: Envelope[Any]) -> object:
    return await runtime.ports.settle_one(envelope)


async def _settle_batch(inbound: Sequence[Inbound]) -> object:
    return await runtime.ports.settle(inbound)


def _accepted(record: ConsumerRecord[bytes, bytes]) -> dict[str, type[BaseModel]]:
    # Each topic carries one command type: a Withdraw on commands.deposit is dead-lettered.
    return {Deposit.TYPE: Deposit} if record.topic == DEPOSIT_COMMANDS else {Withdraw.TYPE: Withdraw}


@broker.subscriber(DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, **runtime.subscriber_options())
async def on_cash_commands(msg: KafkaMessage) -> None:
    await runtime.process(msg, _accepted, _settle, _settle_batch)
