"""Settle market orders through the shared loop (consumers.common.settle): trading's rules and store."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from consumers.common.settle import Outcome, Settler
from consumers.trading.decisions import OrderDecision, TradingAccount, TradingRules, apply_order
from schemas.commands import PlaceOrder
from schemas.envelope import Envelope
from schemas.topics import ORDER_EVENTS

TradingPorts = Settler[TradingAccount, OrderDecision]


class OrderRules:
    topic = ORDER_EVENTS

    def __init__(self, rules: TradingRules) -> None:
        self.rules = rules

    def dedupe_id(self, message: Envelope[Any]) -> uuid.UUID:
        return message.id

    def decide(
        self, message: Envelope[Any], state: TradingAccount, now: datetime
    ) -> tuple[OrderDecision, TradingAccount]:
        return apply_order(message, state, self.rules, now)

    def outcome(self, decision: OrderDecision) -> Outcome:
        return Outcome(
            "command.completed",
            "settled" if decision.settled else "rejected",
            {
                "kind": "order",
                "reason": decision.reason,
                "side": decision.side,
                "asset": decision.asset,
                "quantity": str(decision.quantity),
                "price": str(decision.price) if decision.price is not None else None,
                "amount": str(decision.leg.cash) if decision.leg is not None else None,
            },
        )


async def settle_order(command: Envelope[PlaceOrder], ports: TradingPorts) -> OrderDecision | None:
    """The decision committed, or None when the order had been handled before."""
    return await ports.settle_one(command)
