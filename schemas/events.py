"""Events: what happened. Past-tense names; each is the payload of an `Envelope`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from schemas.envelope import Envelope, derive_event_id
from schemas.money import AssetQuantity, CashAmount, DecimalString

CashRejectionReason = Literal["insufficient_funds", "daily_limit_exceeded", "unknown_account"]
OrderRejectionReason = Literal[
    "insufficient_funds", "insufficient_holdings", "unknown_asset", "no_price", "unknown_account"
]


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    # Whether the event ends its command as settled (True) or rejected (False).
    SETTLES: ClassVar[bool]
    # The kind of command whose outcome this event records (command status `kind`).
    KIND: ClassVar[str]

    command_id: uuid.UUID


class DepositSettled(Event):
    TYPE: ClassVar[str] = "DepositSettled"
    KIND: ClassVar[str] = "deposit"
    SETTLES: ClassVar[bool] = True

    amount: CashAmount
    balance_after: DecimalString


class DepositRejected(Event):
    TYPE: ClassVar[str] = "DepositRejected"
    KIND: ClassVar[str] = "deposit"
    SETTLES: ClassVar[bool] = False

    amount: CashAmount
    reason: CashRejectionReason


class WithdrawalSettled(Event):
    TYPE: ClassVar[str] = "WithdrawalSettled"
    KIND: ClassVar[str] = "withdrawal"
    SETTLES: ClassVar[bool] = True

    amount: CashAmount
    balance_after: DecimalString


class WithdrawalRejected(Event):
    TYPE: ClassVar[str] = "WithdrawalRejected"
    KIND: ClassVar[str] = "withdrawal"
    SETTLES: ClassVar[bool] = False

    amount: CashAmount
    reason: CashRejectionReason


def command_result(event: Event) -> dict[str, object]:
    """What a settled command's status shows in `result`: the event's facts, minus bookkeeping."""
    return event.model_dump(mode="json", exclude={"command_id", "reason"})


def event_caused_by(cause: Envelope[Any], payload: Event, handler: str, now: datetime) -> Envelope[Event]:
    """The event a handler records for the message that caused it. Its id derives from the cause and the
    handler, so a replay or redelivery republishes the same id."""
    return Envelope[Event](
        id=derive_event_id(cause.id, handler),
        type=payload.TYPE,
        version=payload.VERSION,
        occurred_at=now,
        account_id=cause.account_id,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        payload=payload,
    )


BALANCE_EVENT_TYPES: dict[str, type[Event]] = {
    e.TYPE: e for e in (DepositSettled, DepositRejected, WithdrawalSettled, WithdrawalRejected)
}


class OrderFilled(Event):
    """A market order filled at `price`. `cash_amount` is the cash leg in cents (a buy's cost, rounded up,
    or a sell's proceeds, rounded down, fee included); `balance_after` is the cash it left."""

    TYPE: ClassVar[str] = "OrderFilled"
    KIND: ClassVar[str] = "order"
    SETTLES: ClassVar[bool] = True

    order_id: uuid.UUID
    side: Literal["buy", "sell"]
    asset: str
    quantity: AssetQuantity
    price: DecimalString
    cash_amount: DecimalString
    fee: DecimalString
    balance_after: DecimalString
    # The quantity of the asset held after the fill.
    holding_after: DecimalString


class OrderRejected(Event):
    TYPE: ClassVar[str] = "OrderRejected"
    KIND: ClassVar[str] = "order"
    SETTLES: ClassVar[bool] = False

    order_id: uuid.UUID
    side: Literal["buy", "sell"]
    asset: str
    quantity: AssetQuantity
    reason: OrderRejectionReason


class PositionChanged(Event):
    """The portfolio projection's view of one position after applying a fill (not a command outcome)."""

    TYPE: ClassVar[str] = "PositionChanged"
    KIND: ClassVar[str] = "order"
    SETTLES: ClassVar[bool] = True

    source_event_id: uuid.UUID
    asset: str
    quantity: DecimalString
    average_cost: DecimalString
    realized_pnl: DecimalString


ORDER_EVENT_TYPES: dict[str, type[Event]] = {e.TYPE: e for e in (OrderFilled, OrderRejected)}
PORTFOLIO_EVENT_TYPES: dict[str, type[Event]] = {PositionChanged.TYPE: PositionChanged}

# Every event that ends a command, by type: the status projection reads all of them.
OUTCOME_EVENT_TYPES: dict[str, type[Event]] = {**BALANCE_EVENT_TYPES, **ORDER_EVENT_TYPES}
