"""What the trading handler needs from storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.trading.decisions import OrderDecision, OrderState


@dataclass(frozen=True)
class LoadedOrderState:
    state: OrderState
    # Present when this order was already filled or rejected: the handler only republishes.
    outcome: StoredOutcome | None


class TradingStore(Protocol):
    async def load(self, account_id: str, command_id: uuid.UUID, asset: str) -> LoadedOrderState: ...

    async def commit(self, decision: OrderDecision, topic: str) -> CommitResult: ...
