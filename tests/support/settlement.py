"""In-memory settlement stores with the same contract as the DynamoDB adapters (the contract suite in
tests/integration/test_settlement_store_contract.py runs both): an account's plan is written whole or
refused whole, refused when a dedupe record exists or the state moved since it was read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from consumers.common.ports import StoredOutcome
from consumers.common.settle import AccountPlan, Snapshot
from consumers.ledger.decisions import CashAccount, CashDecision, CashKind
from consumers.portfolio.positions import Position, PositionDecision, Positions, PositionState
from consumers.trading.decisions import Holding, OrderDecision, Quote, TradingAccount
from infra.dynamo.ledger_store import DynamoLedgerStore
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.dynamo.trading_store import DynamoTradingStore
from schemas.commands import Deposit
from schemas.envelope import Envelope
from schemas.events import OrderFilled


def _too_many(plan: AccountPlan[Any, Any], limit: int) -> None:
    if len(plan.decisions) > limit:
        raise ValueError(f"{len(plan.decisions)} commands for one account exceed one transaction")


@dataclass
class FakeLedgerStore:
    balances: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    daily: dict[tuple[str, CashKind, date], Decimal] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    # Plans to refuse before writing for real, to exercise the re-decide path.
    pending_conflicts: int = 0
    # Commands committed.
    commits: int = 0
    max_commands_per_account: int = DynamoLedgerStore.max_commands_per_account

    def open_account(self, account_id: str, available: Decimal = Decimal(0)) -> None:
        self.balances[account_id] = (available, 0)

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[CashAccount]:
        # A real store suspends here; so does this one, so that concurrent settlements interleave.
        await asyncio.sleep(0)
        states: dict[str, CashAccount] = {}
        for account_id in {m.account_id for m in messages}:
            balance = self.balances.get(account_id)
            # Like the balance item, which holds every day's totals: all of the account's.
            counters = {(kind, day): total for (a, kind, day), total in self.daily.items() if a == account_id}
            states[account_id] = CashAccount(
                exists=balance is not None,
                available=balance[0] if balance else Decimal(0),
                version=balance[1] if balance else 0,
                daily=counters,
            )
        return Snapshot(states, {m.id: self.outcomes[m.id] for m in messages if m.id in self.outcomes})

    async def commit(
        self, plans: Sequence[AccountPlan[CashAccount, CashDecision]], topic: str
    ) -> frozenset[str]:
        await asyncio.sleep(0)
        for plan in plans:
            _too_many(plan, self.max_commands_per_account)
        refused = {p.account_id for p in plans if not self._holds(p)}
        for plan in plans:
            if plan.account_id in refused:
                continue
            if plan.after.version != plan.before.version:
                self.balances[plan.account_id] = (plan.after.available, plan.after.version)
            for d in plan.decisions:
                if d.settled:
                    key = (plan.account_id, d.kind, d.day)
                    self.daily[key] = self.daily.get(key, Decimal(0)) + d.amount
                self.outcomes[d.command_id] = StoredOutcome(topic, tuple(e.to_bytes() for e in d.events))
                self.events.extend(d.events)
                self.commits += 1
        return frozenset(refused)

    def _holds(self, plan: AccountPlan[CashAccount, CashDecision]) -> bool:
        if any(d.command_id in self.outcomes for d in plan.decisions):
            return False
        if self.pending_conflicts:
            self.pending_conflicts -= 1
            return False
        current = self.balances.get(plan.account_id)
        if not plan.before.exists:
            return current is None
        if current is None or current[1] != plan.before.version:
            return False
        available, added = current[0], dict[tuple[CashKind, date], Decimal]()
        for d in plan.decisions:
            if not d.settled:
                continue
            assert d.daily_headroom is not None
            available += d.amount if d.kind == "deposit" else -d.amount
            counter = (d.kind, d.day)
            if (
                self.daily.get((plan.account_id, *counter), Decimal(0)) + added.get(counter, Decimal(0))
                > d.daily_headroom
            ):
                return False
            added[counter] = added.get(counter, Decimal(0)) + d.amount
            if available < 0:
                return False
        return True


def _kind(message: Envelope[Any]) -> CashKind:
    return "deposit" if isinstance(message.payload, Deposit) else "withdrawal"


@dataclass
class FakeTradingStore:
    balances: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    holdings: dict[tuple[str, str], tuple[Decimal, int]] = field(default_factory=dict)
    # Known assets and their latest price (None: known, but no tick yet).
    prices: dict[str, Decimal | None] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)
    orders: dict[uuid.UUID, OrderDecision] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    pending_conflicts: int = 0
    commits: int = 0
    max_commands_per_account: int = DynamoTradingStore.max_commands_per_account

    def open_account(self, account_id: str, available: Decimal = Decimal(0)) -> None:
        self.balances[account_id] = (available, 0)

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[TradingAccount]:
        await asyncio.sleep(0)
        assets = {m.payload.asset for m in messages}
        quotes = {a: Quote(a in self.prices, self.prices.get(a)) for a in assets}
        states: dict[str, TradingAccount] = {}
        for account_id in {m.account_id for m in messages}:
            balance = self.balances.get(account_id)
            states[account_id] = TradingAccount(
                exists=balance is not None,
                available=balance[0] if balance else Decimal(0),
                balance_version=balance[1] if balance else 0,
                holdings={
                    a: Holding(*self.holdings[(account_id, a)])
                    for a in assets
                    if (account_id, a) in self.holdings
                },
                quotes=quotes,
            )
        return Snapshot(states, {m.id: self.outcomes[m.id] for m in messages if m.id in self.outcomes})

    async def commit(
        self, plans: Sequence[AccountPlan[TradingAccount, OrderDecision]], topic: str
    ) -> frozenset[str]:
        await asyncio.sleep(0)
        for plan in plans:
            _too_many(plan, self.max_commands_per_account)
        refused = {p.account_id for p in plans if not self._holds(p)}
        for plan in plans:
            if plan.account_id in refused:
                continue
            if plan.after.balance_version != plan.before.balance_version:
                self.balances[plan.account_id] = (plan.after.available, plan.after.balance_version)
            for asset, holding in plan.after.holdings.items():
                assert holding.version is not None
                self.holdings[(plan.account_id, asset)] = (holding.quantity, holding.version)
            for d in plan.decisions:
                self.outcomes[d.command_id] = StoredOutcome(topic, tuple(e.to_bytes() for e in d.events))
                self.orders[d.order_id] = d
                self.events.extend(d.events)
                self.commits += 1
        return frozenset(refused)

    def _holds(self, plan: AccountPlan[TradingAccount, OrderDecision]) -> bool:
        if any(d.command_id in self.outcomes or d.order_id in self.orders for d in plan.decisions):
            return False
        if self.pending_conflicts:
            self.pending_conflicts -= 1
            return False
        fills = [d for d in plan.decisions if d.settled]
        if not fills:
            return True
        current = self.balances.get(plan.account_id)
        if current is None or current[1] != plan.before.balance_version:
            return False
        available = current[0]
        held: dict[str, Decimal] = {}
        for asset in {d.asset for d in fills}:
            stored = self.holdings.get((plan.account_id, asset))
            before = plan.before.holdings.get(asset)
            if (stored[1] if stored else None) != (before.version if before else None):
                return False
            held[asset] = stored[0] if stored else Decimal(0)
        for d in fills:
            assert d.leg is not None
            available += -d.leg.cash if d.side == "buy" else d.leg.cash
            held[d.asset] += d.quantity if d.side == "buy" else -d.quantity
            if available < 0 or held[d.asset] < 0:
                return False
        return True


@dataclass
class FakePortfolioStore:
    positions: dict[tuple[str, str], tuple[Position, int]] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)
    max_commands_per_account: int = DynamoPortfolioStore.max_commands_per_account

    async def load(self, messages: Sequence[Envelope[Any]]) -> Snapshot[Positions]:
        await asyncio.sleep(0)
        fills = [m for m in messages if isinstance(m.payload, OrderFilled)]
        states = {
            account_id: Positions(
                {
                    m.payload.asset: PositionState(*self.positions[(account_id, m.payload.asset)])
                    for m in fills
                    if (account_id, m.payload.asset) in self.positions and m.account_id == account_id
                }
            )
            for account_id in {m.account_id for m in messages}
        }
        return Snapshot(states, {m.id: self.outcomes[m.id] for m in fills if m.id in self.outcomes})

    async def commit(
        self, plans: Sequence[AccountPlan[Positions, PositionDecision]], topic: str
    ) -> frozenset[str]:
        await asyncio.sleep(0)
        for plan in plans:
            _too_many(plan, self.max_commands_per_account)
        refused = {p.account_id for p in plans if not self._holds(p)}
        for plan in plans:
            if plan.account_id in refused:
                continue
            for asset, state in plan.after.by_asset.items():
                assert state.version is not None
                self.positions[(plan.account_id, asset)] = (state.position, state.version)
            for d in plan.decisions:
                self.outcomes[d.source_event_id] = StoredOutcome(topic, tuple(e.to_bytes() for e in d.events))
        return frozenset(refused)

    def _holds(self, plan: AccountPlan[Positions, PositionDecision]) -> bool:
        if any(d.source_event_id in self.outcomes for d in plan.decisions):
            return False
        for asset in {d.asset for d in plan.decisions}:
            stored = self.positions.get((plan.account_id, asset))
            before = plan.before.by_asset.get(asset)
            if (stored[1] if stored else None) != (before.version if before else None):
                return False
        return True
