"""The ledger consumer: settles `commands.deposit` and `commands.withdrawal`.

Run alone with `faststream run consumers.ledger.app:app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from consumers.common.runtime import make_broker, process_record, single_record, subscriber_options
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.handlers import LedgerPorts, settle_deposit, settle_withdrawal
from infra.dynamo.client import dynamodb_client
from infra.dynamo.ledger_store import DynamoLedgerStore
from infra.kafka.producer import KafkaPublisher, make_producer
from infra.logging import configure_logging
from infra.settings import get_settings
from infra.telemetry import configure_tracing
from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS

GROUP = "ledger"
settings = get_settings()
configure_logging(settings, GROUP)
configure_tracing(GROUP)
broker = make_broker(settings, GROUP)


class _Runtime:
    ports: LedgerPorts
    publisher: KafkaPublisher


runtime = _Runtime()


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    async with dynamodb_client(settings) as client:
        producer = make_producer(settings, f"ledgerflow-{GROUP}")
        await producer.start()
        try:
            runtime.publisher = KafkaPublisher(producer)
            runtime.ports = build_ledger_ports(
                settings, DynamoLedgerStore(client, settings.dynamodb_table), runtime.publisher
            )
            yield
        finally:
            await producer.stop()


app = FastStream(broker, lifespan=lifespan)


async def _dispatch(envelope: Envelope[Any]) -> object:
    if isinstance(envelope.payload, Deposit):
        return await settle_deposit(envelope, runtime.ports)
    return await settle_withdrawal(envelope, runtime.ports)


@broker.subscriber(DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, **subscriber_options(settings, GROUP))
async def on_cash_command(msg: KafkaMessage) -> None:
    record = single_record(msg)
    accepted = {Deposit.TYPE: Deposit} if record.topic == DEPOSIT_COMMANDS else {Withdraw.TYPE: Withdraw}
    await process_record(
        record,
        group=GROUP,
        accepted=accepted,
        handle=_dispatch,
        sender=runtime.publisher,
        settings=settings,
    )
