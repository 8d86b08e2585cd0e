"""Settle cash commands: load, decide, write atomically, publish. Safe to run any number of times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from consumers.common.ports import EventPublisher
from consumers.ledger.decisions import (
    CashAccountState,
    CashDecision,
    CashKind,
    CashLimits,
    command_day,
    decide_deposit,
    decide_withdrawal,
)
from consumers.ledger.ports import LedgerStore
from infra.audit import audit
from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope, utc_now
from schemas.topics import BALANCE_EVENTS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LedgerPorts:
    store: LedgerStore
    publisher: EventPublisher
    limits: CashLimits
    clock: Callable[[], datetime] = utc_now


Decide = Callable[[CashAccountState, datetime], CashDecision]


async def settle_deposit(command: Envelope[Deposit], ports: LedgerPorts) -> CashDecision | None:
    def decide(state: CashAccountState, now: datetime) -> CashDecision:
        return decide_deposit(command, state, ports.limits, now)

    return await _settle(command, "deposit", decide, ports)


async def settle_withdrawal(command: Envelope[Withdraw], ports: LedgerPorts) -> CashDecision | None:
    def decide(state: CashAccountState, now: datetime) -> CashDecision:
        return decide_withdrawal(command, state, ports.limits, now)

    return await _settle(command, "withdrawal", decide, ports)


async def _settle(
    command: Envelope[Deposit] | Envelope[Withdraw], kind: CashKind, decide: Decide, ports: LedgerPorts
) -> CashDecision | None:
    """Returns the decision it committed, or None when the command had been handled before."""
    day = command_day(command)
    attempt = 0
    while True:
        attempt += 1
        loaded = await ports.store.load(command.account_id, command.id, kind, day)
        if loaded.outcome is not None:
            log.info("ledger.duplicate", republished=len(loaded.outcome.events))
            await ports.publisher.publish_raw(loaded.outcome.topic, command.account_id, loaded.outcome.events)
            return None
        decision = decide(loaded.state, ports.clock())
        result = await ports.store.commit(decision, BALANCE_EVENTS)
        if result == "committed":
            await ports.publisher.publish(BALANCE_EVENTS, decision.events)
            audit(
                "command.completed",
                result="settled" if decision.settled else "rejected",
                kind=kind,
                reason=decision.reason,
                amount=str(decision.amount),
                attempts=attempt,
            )
            return decision
        # "duplicate": a concurrent delivery won the race; the next load finds its outcome.
        # "conflict": the balance moved under us (a trade on the same account); decide again.
        log.info("ledger.retry", result=result, attempt=attempt)
