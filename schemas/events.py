"""Events: what happened. Past-tense names; each is the payload of an `Envelope`."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from schemas.money import CashAmount, DecimalString

CashRejectionReason = Literal["insufficient_funds", "daily_limit_exceeded", "unknown_account"]


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


BALANCE_EVENT_TYPES: dict[str, type[Event]] = {
    e.TYPE: e for e in (DepositSettled, DepositRejected, WithdrawalSettled, WithdrawalRejected)
}

# Every event that ends a command, by type: the status projection reads all of them.
OUTCOME_EVENT_TYPES: dict[str, type[Event]] = {**BALANCE_EVENT_TYPES}
