"""The ledger consumer: settles `commands.deposit` and `commands.withdrawal`.

Run alone with `faststream run consumers.ledger.app:app`.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import ConsumerRuntime, single_record
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.handlers import LedgerPorts, settle_deposit, settle_withdrawal
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
    if isinstance(envelope.payload, Deposit):
        return await settle_deposit(envelope, runtime.ports)
    return await settle_withdrawal(envelope, runtime.ports)


@broker.subscriber(DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, **runtime.subscriber_options())
async def on_cash_command(msg: KafkaMessage) -> None:
    # Each topic carries one command type: a Withdraw on commands.deposit is dead-lettered.
    is_deposit = single_record(msg).topic == DEPOSIT_COMMANDS
    accepted = {Deposit.TYPE: Deposit} if is_deposit else {Withdraw.TYPE: Withdraw}
    await runtime.process(msg, accepted, _settle)
