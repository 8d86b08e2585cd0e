"""What trading needs from storage: the settlement store over trading accounts."""

from __future__ import annotations

from consumers.common.settle import SettlementStore
from consumers.trading.decisions import OrderDecision, TradingAccount

TradingStore = SettlementStore[TradingAccount, OrderDecision]
