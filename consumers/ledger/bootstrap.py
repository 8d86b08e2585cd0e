"""Wiring of the ledger's settlement: production passes DynamoDB and Kafka adapters, tests pass fakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from consumers.common.ports import EventPublisher
from consumers.common.settle import Settler
from consumers.ledger.decisions import CashLimits
from consumers.ledger.handlers import LedgerPorts, LedgerRules
from consumers.ledger.ports import LedgerStore
from infra.settings import Settings
from schemas.envelope import utc_now


def build_ledger_ports(
    settings: Settings,
    store: LedgerStore,
    publisher: EventPublisher,
    clock: Callable[[], datetime] = utc_now,
) -> LedgerPorts:
    limits = CashLimits(settings.daily_deposit_limit, settings.daily_withdrawal_limit)
    return Settler(LedgerRules(limits), store, publisher, clock)
