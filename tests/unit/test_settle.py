"""The shared settlement loop (consumers.common.settle) with in-memory stores: batching, duplicates,
refused accounts re-decided while the others stand, the per-account limit, publishing and auditing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog

from consumers.common.settle import AccountPlan, Inbound
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.decisions import CashAccount, CashDecision
from consumers.portfolio.bootstrap import build_portfolio_ports
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit, Withdraw
from schemas.envelope import Envelope
from schemas.events import Event, OrderFilled, OrderRejected
from tests.support.fakes import FakePublisher
from tests.support.settlement import FakeLedgerStore, FakePortfolioStore

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _deposit(account: str, amount: str) -> Envelope[Any]:
    return envelope_for(Deposit(amount=Decimal(amount)), account)


def _withdraw(account: str, amount: str) -> Envelope[Any]:
    return envelope_for(Withdraw(amount=Decimal(amount)), account)


class CountingStore(FakeLedgerStore):
    """Counts the store's round trips; can let a concurrent writer move one account after a load."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.commit_calls = 0
        self.move_after_load: tuple[str, Decimal] | None = None
        self.committed_plans: list[list[str]] = []

    async def load(self, messages: Sequence[Envelope[Any]]) -> Any:
        self.loads += 1
        snapshot = await super().load(messages)
        if self.move_after_load is not None:
            account, amount = self.move_after_load
            self.move_after_load = None
            available, version = self.balances[account]
            self.balances[account] = (available + amount, version + 1)
        return snapshot

    async def commit(
        self, plans: Sequence[AccountPlan[CashAccount, CashDecision]], topic: str
    ) -> frozenset[str]:
        self.commit_calls += 1
        refused = await super().commit(plans, topic)
        self.committed_plans.append([p.account_id for p in plans if p.account_id not in refused])
        return refused


def _ports(store: FakeLedgerStore, publisher: FakePublisher) -> Any:
    return build_ledger_ports(Settings(), store, publisher, clock=lambda: NOW)


async def test_a_batch_over_many_accounts_is_one_load_and_one_commit() -> None:
    store, publisher = CountingStore(), FakePublisher()
    for account in ("a", "b", "c"):
        store.open_account(account, Decimal("10"))
    messages = [
        _deposit("a", "5"),
        _withdraw("b", "4"),
        _withdraw("a", "15"),
        _deposit("c", "1"),
        _withdraw("c", "20"),
    ]
    decisions = await _ports(store, publisher).settle([Inbound(m) for m in messages])
    assert (store.loads, store.commit_calls) == (1, 1)
    assert [d.reason if d else "dup" for d in decisions] == [None, None, None, None, "insufficient_funds"]
    assert store.balances == {
        "a": (Decimal("0.00"), 2),
        "b": (Decimal("6.00"), 1),
        "c": (Decimal("11.00"), 1),
    }
    # One event per command, each account's in command order.
    published = [json.loads(v) for _, _, v in publisher.published]
    assert sorted(p["causation_id"] for p in published) == sorted(str(m.id) for m in messages)
    a_events = [p["payload"]["balance_after"] for p in published if p["account_id"] == "a"]
    assert a_events == ["15.00", "0.00"]


async def test_a_refused_account_is_decided_again_and_the_others_stand() -> None:
    store, publisher = CountingStore(), FakePublisher()
    store.open_account("a", Decimal("10"))
    store.open_account("b", Decimal("10"))
    # A trade lands on "a" between the read and the write: "a" must be decided again on fresh state.
    store.move_after_load = ("a", Decimal("-8"))
    messages = [_withdraw("a", "5"), _withdraw("b", "5")]
    decisions = await _ports(store, publisher).settle([Inbound(m) for m in messages])
    assert store.committed_plans == [["b"], ["a"]]
    assert decisions[0] is not None and decisions[0].reason == "insufficient_funds"
    assert decisions[1] is not None and decisions[1].settled
    assert store.balances == {"a": (Decimal("2"), 1), "b": (Decimal("5.00"), 1)}
    assert store.commits == 2 and len(publisher.published) == 2


async def test_duplicates_republish_their_stored_events_and_change_nothing() -> None:
    store, publisher = FakeLedgerStore(), FakePublisher()
    store.open_account("a")
    ports = _ports(store, publisher)
    first = _deposit("a", "3")
    await ports.settle([Inbound(first)])
    # Redelivered alone, and twice more within a batch with a new command between.
    second = _deposit("a", "4")
    decisions = await ports.settle([Inbound(first), Inbound(second), Inbound(first)])
    assert decisions[0] is None and decisions[2] is None and decisions[1] is not None
    assert store.balances["a"] == (Decimal("7.00"), 2)
    values = [v for _, _, v in publisher.published]
    assert values[0] == values[1] == values[3] and len(values) == 4


async def test_a_command_delivered_twice_in_one_batch_takes_effect_once() -> None:
    store, publisher = FakeLedgerStore(), FakePublisher()
    store.open_account("a")
    command = _deposit("a", "3")
    decisions = await _ports(store, publisher).settle([Inbound(command), Inbound(command)])
    assert decisions[0] is not None and decisions[1] is None
    assert store.balances["a"] == (Decimal("3.00"), 1)
    first, again = (v for _, _, v in publisher.published)
    assert first == again


async def test_more_commands_than_one_transaction_holds_take_several_rounds_in_order() -> None:
    store, publisher = CountingStore(), FakePublisher()
    store.open_account("a")
    count = store.max_commands_per_account * 2 + 3
    messages = [_deposit("a", "1") for _ in range(count)]
    decisions = await _ports(store, publisher).settle([Inbound(m) for m in messages])
    assert store.commit_calls == 3
    assert [d.new_available for d in decisions if d] == [Decimal(n) for n in range(1, count + 1)]
    assert store.balances["a"] == (Decimal(count), count)


async def test_every_outcome_is_audited_with_its_own_command(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeLedgerStore()
    store.open_account("a")
    messages = [_deposit("a", "5"), _withdraw("a", "9")]
    audited: list[dict[str, Any]] = []

    def record(action: str, *, result: str, **fields: Any) -> None:
        # The record as the log line would carry it: its fields plus the context bound around the call.
        context = structlog.contextvars.get_contextvars()
        audited.append({**context, **fields, "event": action, "result": result, "audit": True})

    # Recorded at the call, not captured from the logger: structlog caches a configured logger on first
    # use, so capturing its output depends on which test configured logging first.
    monkeypatch.setattr("consumers.common.settle.audit", record)
    await _ports(store, FakePublisher()).settle(
        [Inbound(m, {"trace_id": f"t{i}"}) for i, m in enumerate(messages)]
    )
    assert [(r["event"], r["result"], r["kind"]) for r in audited] == [
        ("command.completed", "settled", "deposit"),
        ("command.completed", "rejected", "withdrawal"),
    ]
    assert [r["command_id"] for r in audited] == [str(m.id) for m in messages]
    assert [r["trace_id"] for r in audited] == ["t0", "t1"]


def _fill(account: str, side: str, quantity: str, price: str) -> Envelope[Event]:
    command = envelope_for(Deposit(amount=Decimal(1)), account)
    payload = OrderFilled(
        command_id=command.id,
        order_id=command.id,
        side=side,  # type: ignore[arg-type]
        asset="BTC",
        quantity=Decimal(quantity),
        price=Decimal(price),
        cash_amount=Decimal(1),
        fee=Decimal(0),
        balance_after=Decimal(0),
        holding_after=Decimal(0),
    )
    return Envelope[Event](
        id=command.id,
        type=payload.TYPE,
        version=1,
        occurred_at=NOW,
        account_id=account,
        correlation_id=command.id,
        causation_id=command.id,
        payload=payload,
    )


async def test_fills_coalesce_into_one_position_write_and_rejections_are_skipped() -> None:
    store, publisher = FakePortfolioStore(), FakePublisher()
    ports = build_portfolio_ports(store, publisher, clock=lambda: NOW)
    rejected_id = _fill("a", "buy", "1", "1").id
    rejected = Envelope[Event](
        id=rejected_id,
        type=OrderRejected.TYPE,
        version=1,
        occurred_at=NOW,
        account_id="a",
        correlation_id=rejected_id,
        payload=OrderRejected(
            command_id=rejected_id,
            order_id=rejected_id,
            side="buy",
            asset="BTC",
            quantity=Decimal(1),
            reason="no_price",
        ),
    )
    fills = [_fill("a", "buy", "2", "10"), rejected, _fill("a", "sell", "1", "20")]
    decisions = await ports.settle([Inbound(f) for f in fills])
    assert decisions[1] is None
    position, version = store.positions[("a", "BTC")]
    assert (position.quantity, position.average_cost, position.realized_pnl, version) == (
        Decimal(1),
        Decimal(10),
        Decimal(10),
        2,
    )
    assert len(publisher.published) == 2
