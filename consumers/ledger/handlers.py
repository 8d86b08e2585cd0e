"""Settle cash commands through the shared loop (consumers.common.settle): the ledger's rules and store."""

from __future__ import annotations

import uuid
from typing import Any, cast

from consumers.common.settle import Outcome, Settler
from consumers.ledger.decisions import CashAccount, CashDecision, CashLimits, apply_cash
from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope
from schemas.topics import BALANCE_EVENTS

LedgerPorts = Settler[CashAccount, CashDecision]


class LedgerRules:
    topic = BALANCE_EVENTS

    def __init__(self, limits: CashLimits) -> None:
        self.limits = limits

    def dedupe_id(self, message: Envelope[Any]) -> uuid.UUID:
        return message.id

    def decide(
        self, message: Envelope[Any], state: CashAccount, now: Any
    ) -> tuple[CashDecision, CashAccount]:
        command = cast(Envelope[Deposit] | Envelope[Withdraw], message)
        return apply_cash(command, state, self.limits, now)

    def outcome(self, decision: CashDecision) -> Outcome:
        return Outcome(
            "command.completed",
            "settled" if decision.settled else "rejected",
            {"kind": decision.kind, "reason": decision.reason, "amount": str(decision.amount)},
        )


async def settle_deposit(command: Envelope[Deposit], ports: LedgerPorts) -> CashDecision | None:
    """The decision committed, or None when the command had been handled before."""
    return await ports.settle_one(command)


async def settle_withdrawal(command: Envelope[Withdraw], ports: LedgerPorts) -> CashDecision | None:
    return await ports.settle_one(command)
