"""In-memory adapters with the same contracts as the DynamoDB and Kafka ones, for handler unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.ledger.decisions import CashAccountState, CashDecision, CashKind
from consumers.ledger.ports import LoadedCashState
from schemas.envelope import Envelope


@dataclass
class FakeLedgerStore:
    balances: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    daily: dict[tuple[str, CashKind, date], Decimal] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    # Conflicts to report before committing for real, to exercise the re-decide path.
    pending_conflicts: int = 0
    commits: int = 0

    def open_account(self, account_id: str, available: Decimal = Decimal(0)) -> None:
        self.balances[account_id] = (available, 0)

    async def load(
        self, account_id: str, command_id: uuid.UUID, kind: CashKind, day: date
    ) -> LoadedCashState:
        balance = self.balances.get(account_id)
        state = CashAccountState(
            exists=balance is not None,
            available=balance[0] if balance else Decimal(0),
            version=balance[1] if balance else 0,
            daily_total=self.daily.get((account_id, kind, day), Decimal(0)),
        )
        return LoadedCashState(state=state, outcome=self.outcomes.get(command_id))

    async def commit(self, decision: CashDecision, topic: str) -> CommitResult:
        if decision.command_id in self.outcomes:
            return "duplicate"
        if self.pending_conflicts:
            self.pending_conflicts -= 1
            return "conflict"
        current = self.balances.get(decision.account_id)
        if decision.expected_version is not None and (
            current is None or current[1] != decision.expected_version
        ):
            return "conflict"
        if decision.new_available is not None:
            assert current is not None
            if decision.new_available < 0:
                return "conflict"
            self.balances[decision.account_id] = (decision.new_available, current[1] + 1)
            key = (decision.account_id, decision.kind, decision.day)
            assert decision.daily_headroom is not None
            if self.daily.get(key, Decimal(0)) > decision.daily_headroom:
                return "conflict"
            self.daily[key] = self.daily.get(key, Decimal(0)) + decision.amount
        self.outcomes[decision.command_id] = StoredOutcome(
            topic, tuple(e.to_bytes() for e in decision.events)
        )
        self.events.extend(decision.events)
        self.commits += 1
        return "committed"


@dataclass
class FakePublisher:
    published: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None:
        self.published.extend((topic, e.account_id, e.to_bytes()) for e in events)

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None:
        self.published.extend((topic, key, v) for v in values)
