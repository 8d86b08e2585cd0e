"""Settle market orders: load, decide, write atomically, publish. Safe to run any number of times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from consumers.common.ports import EventPublisher
from consumers.trading.decisions import OrderDecision, TradingRules, decide_order
from consumers.trading.ports import TradingStore
from schemas.commands import PlaceOrder
from schemas.envelope import Envelope, utc_now
from schemas.topics import ORDER_EVENTS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TradingPorts:
    store: TradingStore
    publisher: EventPublisher
    rules: TradingRules
    clock: Callable[[], datetime] = utc_now


async def settle_order(command: Envelope[PlaceOrder], ports: TradingPorts) -> OrderDecision | None:
    """Returns the decision it committed, or None when the order had been handled before."""
    attempt = 0
    while True:
        attempt += 1
        loaded = await ports.store.load(command.account_id, command.id, command.payload.asset)
        if loaded.outcome is not None:
            log.info("trading.duplicate", republished=len(loaded.outcome.events))
            await ports.publisher.publish_raw(loaded.outcome.topic, command.account_id, loaded.outcome.events)
            return None
        decision = decide_order(command, loaded.state, ports.rules, ports.clock())
        result = await ports.store.commit(decision, ORDER_EVENTS)
        if result == "committed":
            await ports.publisher.publish(ORDER_EVENTS, decision.events)
            log.info(
                "trading.decided",
                side=decision.side,
                asset=decision.asset,
                outcome="filled" if decision.settled else "rejected",
                reason=decision.reason,
                price=str(decision.price) if decision.price is not None else None,
                attempts=attempt,
            )
            return decision
        # "duplicate": a concurrent delivery won the race; the next load finds its outcome.
        # "conflict": the balance or holding moved under us (a deposit, a withdrawal); decide again.
        log.info("trading.retry", result=result, attempt=attempt)
