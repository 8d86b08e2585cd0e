"""Project fills into positions: load, apply, write atomically, publish. Safe to run any number of times.

Idempotency is per event: the position update and a dedupe record keyed by (portfolio, fill event id)
commit in one transaction, exactly as the ledger does per command. A per-position "last applied
sequence" would be cheaper, but fills carry no per-position sequence and Kafka offsets change when a
topic is rebuilt or migrated; event ids are stable forever. The dedupe record also keeps the
`PositionChanged` it produced, so a redelivery republishes the same event id. A rebuild deletes an
account's positions together with its dedupe records, then replays the topic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from consumers.common.ports import EventPublisher
from consumers.portfolio.ports import PortfolioStore
from consumers.portfolio.positions import PositionDecision, decide_position
from schemas.envelope import Envelope, utc_now
from schemas.events import OrderFilled
from schemas.topics import PORTFOLIO_EVENTS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PortfolioPorts:
    store: PortfolioStore
    publisher: EventPublisher
    clock: Callable[[], datetime] = utc_now


async def project_order_event(event: Envelope[Any], ports: PortfolioPorts) -> PositionDecision | None:
    """Applies a fill; rejections move no position. None when nothing new was committed."""
    if not isinstance(event.payload, OrderFilled):
        return None
    fill: Envelope[OrderFilled] = event
    attempt = 0
    while True:
        attempt += 1
        loaded = await ports.store.load(fill.account_id, fill.payload.asset, fill.id)
        if loaded.outcome is not None:
            log.info("portfolio.duplicate", republished=len(loaded.outcome.events))
            await ports.publisher.publish_raw(loaded.outcome.topic, fill.account_id, loaded.outcome.events)
            return None
        decision = decide_position(fill, loaded.state, ports.clock())
        result = await ports.store.commit(decision, PORTFOLIO_EVENTS)
        if result == "committed":
            await ports.publisher.publish(PORTFOLIO_EVENTS, decision.events)
            log.info("portfolio.applied", asset=decision.asset, attempts=attempt)
            return decision
        log.info("portfolio.retry", result=result, attempt=attempt)
