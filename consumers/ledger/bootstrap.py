"""Wiring of the ledger handler's ports: production passes DynamoDB and Kafka adapters, tests pass fakes."""

from __future__ import annotations

from consumers.common.ports import EventPublisher
from consumers.ledger.decisions import CashLimits
from consumers.ledger.handlers import LedgerPorts
from consumers.ledger.ports import LedgerStore
from infra.settings import Settings


def build_ledger_ports(settings: Settings, store: LedgerStore, publisher: EventPublisher) -> LedgerPorts:
    return LedgerPorts(
        store=store,
        publisher=publisher,
        limits=CashLimits(settings.daily_deposit_limit, settings.daily_withdrawal_limit),
    )
