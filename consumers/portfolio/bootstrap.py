"""Wiring of the portfolio projection: DynamoDB and Kafka in production, fakes in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from consumers.common.ports import EventPublisher
from consumers.common.settle import Settler
from consumers.portfolio.handlers import PortfolioPorts, ProjectionRules
from consumers.portfolio.ports import PortfolioStore
from schemas.envelope import utc_now


def build_portfolio_ports(
    store: PortfolioStore, publisher: EventPublisher, clock: Callable[[], datetime] = utc_now
) -> PortfolioPorts:
    return Settler(ProjectionRules(), store, publisher, clock)
