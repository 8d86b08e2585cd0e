"""What the portfolio projection needs from storage: the settlement store over positions."""

from __future__ import annotations

from consumers.common.settle import SettlementStore
from consumers.portfolio.positions import PositionDecision, Positions

PortfolioStore = SettlementStore[Positions, PositionDecision]
