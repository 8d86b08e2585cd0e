"""Wiring of trading's settlement: production passes DynamoDB and Kafka adapters, tests pass fakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from consumers.common.ports import EventPublisher
from consumers.common.settle import Settler
from consumers.trading.decisions import TradingRules
from consumers.trading.handlers import OrderRules, TradingPorts
from consumers.trading.ports import TradingStore
from infra.settings import Settings
from schemas.envelope import utc_now


def build_trading_ports(
    settings: Settings,
    store: TradingStore,
    publisher: EventPublisher,
    clock: Callable[[], datetime] = utc_now,
) -> TradingPorts:
    return Settler(OrderRules(TradingRules(fee_rate=settings.trading_fee_rate)), store, publisher, clock)
