"""The cash rules as pure functions: a command and the account's current state in, a decision out."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, cast

from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope
from schemas.events import (
    CashRejectionReason,
    DepositRejected,
    DepositSettled,
    Event,
    WithdrawalRejected,
    WithdrawalSettled,
    event_caused_by,
)
from schemas.money import to_cents

HANDLER = "ledger"
CashKind = Literal["deposit", "withdrawal"]


@dataclass(frozen=True)
class CashLimits:
    daily_deposit: Decimal
    daily_withdrawal: Decimal

    def daily(self, kind: CashKind) -> Decimal:
        return self.daily_deposit if kind == "deposit" else self.daily_withdrawal


@dataclass(frozen=True)
class CashAccountState:
    """What the ledger reads before deciding: the balance item and today's counter for the command's kind."""

    exists: bool
    available: Decimal
    version: int
    daily_total: Decimal


@dataclass(frozen=True)
class CashAccount:
    """An account as the ledger settles a run of commands against it: the balance item, and the daily
    counters of the (kind, day) pairs the run touches (absent: nothing counted yet)."""

    exists: bool
    available: Decimal
    version: int
    daily: Mapping[tuple[CashKind, date], Decimal]

    def state_for(self, kind: CashKind, day: date) -> CashAccountState:
        return CashAccountState(
            self.exists, self.available, self.version, self.daily.get((kind, day), Decimal(0))
        )


@dataclass(frozen=True)
class CashDecision:
    command_id: uuid.UUID
    account_id: str
    accepted_at: datetime
    kind: CashKind
    day: date
    amount: Decimal
    # The balance version the decision was made against: the write is conditional on it.
    expected_version: int | None
    new_available: Decimal | None
    # Upper bound the daily counter may hold before this command; None when the command is rejected.
    daily_headroom: Decimal | None
    reason: CashRejectionReason | None
    events: tuple[Envelope[Event], ...]

    @property
    def settled(self) -> bool:
        return self.reason is None


def command_day(command: Envelope[Deposit] | Envelope[Withdraw]) -> date:
    """The UTC day a daily limit counts against: the day the command was accepted, stable on replay."""
    return command.occurred_at.astimezone(UTC).date()


def _reject(
    command: Envelope[Deposit] | Envelope[Withdraw],
    kind: CashKind,
    state: CashAccountState,
    reason: CashRejectionReason,
    now: datetime,
) -> CashDecision:
    amount = command.payload.amount
    payload: Event = (
        DepositRejected(command_id=command.id, amount=amount, reason=reason)
        if kind == "deposit"
        else WithdrawalRejected(command_id=command.id, amount=amount, reason=reason)
    )
    return CashDecision(
        command_id=command.id,
        account_id=command.account_id,
        accepted_at=command.occurred_at,
        kind=kind,
        day=command_day(command),
        amount=amount,
        expected_version=state.version if state.exists else None,
        new_available=None,
        daily_headroom=None,
        reason=reason,
        events=(event_caused_by(command, payload, HANDLER, now),),
    )


def decide_deposit(
    command: Envelope[Deposit], state: CashAccountState, limits: CashLimits, now: datetime
) -> CashDecision:
    amount = command.payload.amount
    if not state.exists:
        return _reject(command, "deposit", state, "unknown_account", now)
    headroom = limits.daily_deposit - amount
    if state.daily_total > headroom:
        return _reject(command, "deposit", state, "daily_limit_exceeded", now)
    new_available = to_cents(state.available + amount)
    payload = DepositSettled(command_id=command.id, amount=amount, balance_after=new_available)
    return CashDecision(
        command_id=command.id,
        account_id=command.account_id,
        accepted_at=command.occurred_at,
        kind="deposit",
        day=command_day(command),
        amount=amount,
        expected_version=state.version,
        new_available=new_available,
        daily_headroom=headroom,
        reason=None,
        events=(event_caused_by(command, payload, HANDLER, now),),
    )


def decide_withdrawal(
    command: Envelope[Withdraw], state: CashAccountState, limits: CashLimits, now: datetime
) -> CashDecision:
    amount = command.payload.amount
    if not state.exists:
        return _reject(command, "withdrawal", state, "unknown_account", now)
    if state.available < amount:
        return _reject(command, "withdrawal", state, "insufficient_funds", now)
    headroom = limits.daily_withdrawal - amount
    if state.daily_total > headroom:
        return _reject(command, "withdrawal", state, "daily_limit_exceeded", now)
    new_available = to_cents(state.available - amount)
    payload = WithdrawalSettled(command_id=command.id, amount=amount, balance_after=new_available)
    return CashDecision(
        command_id=command.id,
        account_id=command.account_id,
        accepted_at=command.occurred_at,
        kind="withdrawal",
        day=command_day(command),
        amount=amount,
        expected_version=state.version,
        new_available=new_available,
        daily_headroom=headroom,
        reason=None,
        events=(event_caused_by(command, payload, HANDLER, now),),
    )


def apply_cash(
    command: Envelope[Deposit] | Envelope[Withdraw], account: CashAccount, limits: CashLimits, now: datetime
) -> tuple[CashDecision, CashAccount]:
    """Decides a cash command against the account, and the account once the decision took effect: a
    settlement moves the balance, bumps its version and counts against its day; a rejection changes
    nothing."""
    kind: CashKind = "deposit" if isinstance(command.payload, Deposit) else "withdrawal"
    day = command_day(command)
    state = account.state_for(kind, day)
    decision = (
        decide_deposit(cast(Envelope[Deposit], command), state, limits, now)
        if kind == "deposit"
        else decide_withdrawal(cast(Envelope[Withdraw], command), state, limits, now)
    )
    if decision.new_available is None:
        return decision, account
    after = replace(
        account,
        available=decision.new_available,
        version=account.version + 1,
        daily={**account.daily, (kind, day): state.daily_total + decision.amount},
    )
    return decision, after
