"""Position arithmetic (average-cost method) and the projection's decision, as pure functions.

- A buy moves the average cost to the quantity-weighted mean of the old average and the fill price.
- A sell leaves the average cost alone and realises (fill price - average cost) x quantity.
- A position sold down to zero forgets its average cost; realised P&L stays.

Average cost and realised P&L are kept to 8 decimal places (half-even), rounded at every step, so the
result is a pure function of the sequence of fills: a replay of the same events gives the same digits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Final, Literal

from schemas.envelope import Envelope
from schemas.events import Event, OrderFilled, PositionChanged, event_caused_by

HANDLER: Final = "portfolio"
PLACES: Final = Decimal("0.00000001")
_EXACT_DIGITS: Final = 60


@dataclass(frozen=True)
class Position:
    quantity: Decimal = Decimal(0)
    average_cost: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)


class Oversold(ValueError):
    """A sell of more than the position holds: trading never fills one, so the events are inconsistent."""


def apply_fill(
    position: Position, side: Literal["buy", "sell"], quantity: Decimal, price: Decimal
) -> Position:
    with localcontext() as ctx:
        ctx.prec = _EXACT_DIGITS
        if side == "buy":
            total = position.quantity + quantity
            cost = position.quantity * position.average_cost + quantity * price
            average = (cost / total).quantize(PLACES, rounding=ROUND_HALF_EVEN)
            return Position(total, average, position.realized_pnl)
        if quantity > position.quantity:
            raise Oversold(f"sell of {quantity} exceeds the position of {position.quantity}")
        realized = ((price - position.average_cost) * quantity).quantize(PLACES, rounding=ROUND_HALF_EVEN)
        remaining = position.quantity - quantity
        average = position.average_cost if remaining > 0 else Decimal(0)
        return Position(remaining, average, position.realized_pnl + realized)


@dataclass(frozen=True)
class PositionState:
    position: Position
    # None while the account has no item for the asset yet.
    version: int | None


@dataclass(frozen=True)
class PositionDecision:
    account_id: str
    asset: str
    source_event_id: uuid.UUID
    expected_version: int | None
    position: Position
    events: tuple[Envelope[Event], ...]


def decide_position(fill: Envelope[OrderFilled], state: PositionState, now: datetime) -> PositionDecision:
    event = fill.payload
    position = apply_fill(state.position, event.side, event.quantity, event.price)
    changed = PositionChanged(
        command_id=event.command_id,
        source_event_id=fill.id,
        asset=event.asset,
        quantity=position.quantity,
        average_cost=position.average_cost,
        realized_pnl=position.realized_pnl,
    )
    # Derived from the fill's id: a replay republishes the same PositionChanged id.
    envelope = event_caused_by(fill, changed, HANDLER, now)
    return PositionDecision(
        account_id=fill.account_id,
        asset=event.asset,
        source_event_id=fill.id,
        expected_version=state.version,
        position=position,
        events=(envelope,),
    )


NO_POSITION = PositionState(Position(), None)


@dataclass(frozen=True)
class Positions:
    """An account's positions in the assets a run of fills trades (absent: none yet)."""

    by_asset: Mapping[str, PositionState]


def apply_position(
    fill: Envelope[OrderFilled], positions: Positions, now: datetime
) -> tuple[PositionDecision, Positions]:
    """Applies a fill to its position; the position's version counts the fills applied to it."""
    state = positions.by_asset.get(fill.payload.asset, NO_POSITION)
    decision = decide_position(fill, state, now)
    after = PositionState(decision.position, (state.version or 0) + 1)
    return decision, Positions({**positions.by_asset, decision.asset: after})
