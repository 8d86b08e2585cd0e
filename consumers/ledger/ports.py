"""What the ledger handler needs from storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.ledger.decisions import CashAccountState, CashDecision, CashKind


@dataclass(frozen=True)
class LoadedCashState:
    state: CashAccountState
    # Present when this command was already settled or rejected: the handler only republishes.
    outcome: StoredOutcome | None


class LedgerStore(Protocol):
    async def load(
        self, account_id: str, command_id: uuid.UUID, kind: CashKind, day: date
    ) -> LoadedCashState: ...

    async def commit(self, decision: CashDecision, topic: str) -> CommitResult: ...
