"""Wiring of the portfolio projection's ports: DynamoDB and Kafka in production, fakes in tests."""

from __future__ import annotations

from consumers.common.ports import EventPublisher
from consumers.portfolio.handlers import PortfolioPorts
from consumers.portfolio.ports import PortfolioStore


def build_portfolio_ports(store: PortfolioStore, publisher: EventPublisher) -> PortfolioPorts:
    return PortfolioPorts(store=store, publisher=publisher)
