"""Wiring of the trading handler's ports: production passes DynamoDB and Kafka adapters, tests pass fakes."""

from __future__ import annotations

from consumers.common.ports import EventPublisher
from consumers.trading.decisions import TradingRules
from consumers.trading.handlers import TradingPorts
from consumers.trading.ports import TradingStore
from infra.settings import Settings


def build_trading_ports(settings: Settings, store: TradingStore, publisher: EventPublisher) -> TradingPorts:
    return TradingPorts(
        store=store, publisher=publisher, rules=TradingRules(fee_rate=settings.trading_fee_rate)
    )
