"""Project fills into positions through the shared loop (consumers.common.settle).

Idempotency is per event: the position update and a dedupe record keyed by (portfolio, fill event id)
commit in one transaction, exactly as the ledger does per command. A per-position "last applied
sequence" would be cheaper, but fills carry no per-position sequence and Kafka offsets change when a
topic is rebuilt or migrated; event ids are stable forever. The dedupe record also keeps the
`PositionChanged` it produced, so a redelivery republishes the same event id. A rebuild deletes an
account's positions together with its dedupe records, then replays the topic.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from consumers.common.settle import Outcome, Settler
from consumers.portfolio.positions import PositionDecision, Positions, apply_position
from schemas.envelope import Envelope
from schemas.events import OrderFilled
from schemas.topics import PORTFOLIO_EVENTS

PortfolioPorts = Settler[Positions, PositionDecision]


class ProjectionRules:
    topic = PORTFOLIO_EVENTS

    def dedupe_id(self, message: Envelope[Any]) -> uuid.UUID | None:
        # Rejections move no position: nothing to record, nothing to publish.
        return message.id if isinstance(message.payload, OrderFilled) else None

    def decide(
        self, message: Envelope[Any], state: Positions, now: datetime
    ) -> tuple[PositionDecision, Positions]:
        return apply_position(message, state, now)

    def outcome(self, decision: PositionDecision) -> Outcome:
        return Outcome(
            "position.changed",
            "applied",
            {"asset": decision.asset, "quantity": str(decision.position.quantity)},
        )


async def project_order_event(event: Envelope[Any], ports: PortfolioPorts) -> PositionDecision | None:
    """Applies a fill; rejections move no position. None when nothing new was committed."""
    return await ports.settle_one(event)
