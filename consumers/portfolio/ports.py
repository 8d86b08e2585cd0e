"""What the portfolio projection needs from storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.portfolio.positions import PositionDecision, PositionState


@dataclass(frozen=True)
class LoadedPosition:
    state: PositionState
    # Present when this fill was applied before: the handler only republishes.
    outcome: StoredOutcome | None


class PortfolioStore(Protocol):
    async def load(self, account_id: str, asset: str, source_event_id: uuid.UUID) -> LoadedPosition: ...

    async def commit(self, decision: PositionDecision, topic: str) -> CommitResult: ...
