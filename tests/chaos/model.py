"""The ledger's rules replayed in pure Python, in the order the ledger actually applied them.

Commands for one account may be sent concurrently, so the order they reach the ledger is not the
order they were sent in, and the ledger and trading decide concurrently, so event times (taken at
decision) can misorder them too. The stored events carry the real order: every settlement bumps the
balance version and records the version it produced, every rejection records the version it was decided
against, so sorting by (version, settlements first) gives the order the writes took effect. Walking that chain, every settlement must
move the balance by its amount to its `balance_after`, and every rejection must be justified by the
balance and the day's totals at that point.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

DAILY_DEPOSIT = Decimal("10000")
DAILY_WITHDRAWAL = Decimal("5000")


@dataclass(frozen=True)
class Sent:
    """A command the API accepted (202)."""

    command_id: str
    account_id: str
    kind: str
    amount: Decimal | None


@dataclass(frozen=True)
class StoredEvent:
    sk: str
    event_id: str
    type: str
    payload: dict[str, Any]
    # The balance version the outcome produced (settlements) or was decided against (rejections).
    balance_version: int = 0

    @property
    def history_position(self) -> tuple[int, int, str]:
        rejected = self.type.endswith("Rejected")
        return (self.balance_version, 1 if rejected else 0, self.sk)


@dataclass
class AccountCheck:
    account_id: str
    problems: list[str] = field(default_factory=list)
    settled: int = 0
    rejected: int = 0


def check_account(
    account_id: str,
    sent: list[Sent],
    events: list[StoredEvent],
    days: dict[str, date],
    stored_balance: Decimal | None,
    limits: tuple[Decimal, Decimal] = (DAILY_DEPOSIT, DAILY_WITHDRAWAL),
) -> AccountCheck:
    """`days`: the UTC day each command was accepted on (its daily limits count against that day)."""
    check = AccountCheck(account_id)
    daily_deposit, daily_withdrawal = limits
    by_command: dict[str, list[StoredEvent]] = defaultdict(list)
    for event in events:
        command_id = event.payload.get("command_id")
        if command_id is not None and event.type != "PositionChanged":
            by_command[str(command_id)].append(event)
    for command in sent:
        outcomes = by_command.get(command.command_id, [])
        if len(outcomes) != 1:
            check.problems.append(f"command {command.command_id} has {len(outcomes)} outcome events")
            continue
        amount = outcomes[0].payload.get("amount")
        if command.amount is not None and amount is not None and Decimal(str(amount)) != command.amount:
            check.problems.append(f"command {command.command_id}: amount {amount} != sent {command.amount}")
    sent_ids = {c.command_id for c in sent}
    for command_id in by_command:
        if command_id not in sent_ids:
            check.problems.append(f"outcome for a command never sent: {command_id}")

    balance = Decimal(0)
    totals: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for event in sorted(events, key=lambda e: e.history_position):
        p = event.payload
        command_id = str(p.get("command_id"))
        day = days.get(command_id)
        amount = Decimal(str(p["amount"])) if "amount" in p else Decimal(0)
        if event.type == "DepositSettled":
            check.settled += 1
            if day is not None and totals["deposit", day] + amount > daily_deposit:
                check.problems.append(f"{command_id}: deposit settled over the daily limit")
            if day is not None:
                totals["deposit", day] += amount
            balance += amount
        elif event.type == "WithdrawalSettled":
            check.settled += 1
            if balance < amount:
                check.problems.append(
                    f"{command_id}: withdrawal of {amount} settled on a balance of {balance}"
                )
            if day is not None and totals["withdrawal", day] + amount > daily_withdrawal:
                check.problems.append(f"{command_id}: withdrawal settled over the daily limit")
            if day is not None:
                totals["withdrawal", day] += amount
            balance -= amount
        elif event.type == "OrderFilled":
            check.settled += 1
            cash = Decimal(str(p["cash_amount"]))
            if p["side"] == "buy":
                if balance < cash:
                    check.problems.append(f"{command_id}: buy of {cash} filled on a balance of {balance}")
                balance -= cash
            else:
                balance += cash
        elif event.type in {"DepositRejected", "WithdrawalRejected", "OrderRejected"}:
            check.rejected += 1
            problem = _unjustified(event.type, p, amount, balance, totals, day, limits)
            if problem:
                check.problems.append(f"{command_id}: {problem}")
            continue
        else:
            continue
        after = p.get("balance_after")
        if after is not None and Decimal(str(after)) != balance:
            check.problems.append(f"{command_id}: balance_after {after} but the chain gives {balance}")
    if stored_balance is None:
        if events:
            check.problems.append("events but no balance item")
    elif stored_balance != balance:
        check.problems.append(f"stored balance {stored_balance} != {balance} from the events")
    return check


def _unjustified(
    event_type: str,
    payload: dict[str, Any],
    amount: Decimal,
    balance: Decimal,
    totals: dict[tuple[str, date], Decimal],
    day: date | None,
    limits: tuple[Decimal, Decimal],
) -> str | None:
    reason = payload.get("reason")
    if event_type == "OrderRejected":
        # The price at the time is not in the event; trading's own tests cover these rules.
        return None
    if reason == "insufficient_funds":
        if event_type != "WithdrawalRejected" or balance >= amount:
            return f"rejected insufficient_funds with {balance} available for {amount}"
        return None
    if reason == "daily_limit_exceeded":
        kind = "deposit" if event_type == "DepositRejected" else "withdrawal"
        limit = limits[0] if kind == "deposit" else limits[1]
        if kind == "withdrawal" and balance < amount:
            return "rejected daily_limit_exceeded where insufficient_funds comes first"
        if day is not None and totals[kind, day] + amount <= limit:
            return f"rejected daily_limit_exceeded with {totals[kind, day]} of {limit} used, for {amount}"
        return None
    return f"unexpected rejection {reason!r}"
