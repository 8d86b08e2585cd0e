"""Property: for any sequence of commands over a few accounts, cut into batches any way, batched
settlement and one-at-a-time settlement give the same balances, daily totals, holdings, outcomes and
published events (ids and bytes), redeliveries included."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from consumers.common.settle import Inbound, Settler
from consumers.ledger.bootstrap import build_ledger_ports
from consumers.trading.bootstrap import build_trading_ports
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit, PlaceOrder, Withdraw
from schemas.envelope import Envelope
from tests.support.fakes import FakePublisher
from tests.support.settlement import FakeLedgerStore, FakeTradingStore

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
ACCOUNTS = ("a", "b", "c")
AMOUNTS = ("0.01", "1", "7.50", "100", "2500", "4999.99", "6000")
QUANTITIES = ("0.5", "1", "3", "10")
PRICES: dict[str, Decimal | None] = {"BTC": Decimal("100"), "ETH": Decimal("7.37"), "ZIL": None}
ASSETS = (*PRICES, "NOPE")


def _cash(op: tuple[str, str, str]) -> Envelope[Any]:
    kind, account, amount = op
    payload = Deposit(amount=Decimal(amount)) if kind == "deposit" else Withdraw(amount=Decimal(amount))
    return envelope_for(payload, account)


def _order(op: tuple[str, str, str, str]) -> Envelope[Any]:
    side, account, asset, quantity = op
    return envelope_for(
        PlaceOrder.model_validate({"side": side, "asset": asset, "quantity": quantity}), account
    )


def _with_redeliveries(messages: list[Envelope[Any]], picks: list[tuple[int, int]]) -> list[Envelope[Any]]:
    """Inserts earlier messages again (a redelivery) at later places."""
    out = list(messages)
    for source, offset in picks:
        if out:
            s = source % len(out)
            out.insert(min(len(out), s + 1 + offset % 5), out[s])
    return out


def _cut(messages: Sequence[Envelope[Any]], sizes: list[int]) -> list[list[Envelope[Any]]]:
    batches, start = [], 0
    for size in sizes:
        if start >= len(messages):
            break
        batches.append(list(messages[start : start + size]))
        start += size
    if start < len(messages):
        batches.append(list(messages[start:]))
    return batches


async def _run(
    build: Callable[[FakePublisher], tuple[Settler[Any, Any], Any]],
    batches: list[list[Envelope[Any]]],
    one_at_a_time: bool,
) -> tuple[Any, list[Any], dict[str, list[Any]]]:
    publisher = FakePublisher()
    settler, store = build(publisher)
    outcomes: list[Any] = []
    for batch in batches:
        if one_at_a_time:
            for message in batch:
                outcomes.append(await settler.settle_one(message))
        else:
            outcomes.extend(await settler.settle([Inbound(m) for m in batch]))
    streams: dict[str, list[Any]] = defaultdict(list)
    for _, key, value in publisher.published:
        streams[key].append(_facts(value))
    return store, outcomes, dict(streams)


def _facts(event: Envelope[Any] | bytes) -> tuple[Any, ...]:
    """An event but for its time (decision times differ between the modes; ids and payloads may not)."""
    if isinstance(event, bytes):
        event = Envelope[Any].model_validate_json(event)
    payload = event.payload.model_dump(mode="json") if isinstance(event.payload, BaseModel) else event.payload
    return (event.id, event.type, event.account_id, event.causation_id, json.dumps(payload, sort_keys=True))


def _stored(outcomes: dict[Any, Any]) -> dict[Any, Any]:
    return {k: (v.topic, [_facts(e) for e in v.events]) for k, v in outcomes.items()}


def _summary(decision: Any) -> Any:
    return (
        None
        if decision is None
        else (decision.command_id, decision.reason, [_facts(e) for e in decision.events])
    )


async def _same(
    build: Callable[[FakePublisher], tuple[Settler[Any, Any], Any]], batches: Any
) -> tuple[Any, Any]:
    one_store, one_outcomes, one_streams = await _run(build, batches, one_at_a_time=True)
    many_store, many_outcomes, many_streams = await _run(build, batches, one_at_a_time=False)
    assert [_summary(d) for d in many_outcomes] == [_summary(d) for d in one_outcomes]
    assert many_streams == one_streams
    return one_store, many_store


cash_ops = st.lists(
    st.tuples(
        st.sampled_from(("deposit", "withdrawal")),
        st.sampled_from((*ACCOUNTS, "nobody")),
        st.sampled_from(AMOUNTS),
    ),
    max_size=40,
)
order_ops = st.lists(
    st.tuples(
        st.sampled_from(("buy", "sell")),
        st.sampled_from((*ACCOUNTS, "nobody")),
        st.sampled_from(ASSETS),
        st.sampled_from(QUANTITIES),
    ),
    max_size=40,
)
redeliveries = st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=4)
cuts = st.lists(st.integers(1, 30), max_size=6)


def _ledger(publisher: FakePublisher) -> tuple[Settler[Any, Any], FakeLedgerStore]:
    store = FakeLedgerStore(max_commands_per_account=4)
    for account in ACCOUNTS:
        store.open_account(account, Decimal("50"))
    return build_ledger_ports(Settings(), store, publisher, clock=lambda: NOW), store


def _trading(publisher: FakePublisher) -> tuple[Settler[Any, Any], FakeTradingStore]:
    store = FakeTradingStore(prices=dict(PRICES), max_commands_per_account=3)
    for account in ACCOUNTS:
        store.open_account(account, Decimal("500"))
    return build_trading_ports(
        Settings(trading_fee_rate=Decimal("0.001")), store, publisher, clock=lambda: NOW
    ), store


def run_async(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    import asyncio
    import functools

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


@settings(max_examples=100, deadline=None)
@given(ops=cash_ops, picks=redeliveries, sizes=cuts)
@run_async
async def test_cash_batched_equals_one_at_a_time(
    ops: list[tuple[str, str, str]], picks: list[tuple[int, int]], sizes: list[int]
) -> None:
    messages = _with_redeliveries([_cash(op) for op in ops], picks)
    one, many = await _same(_ledger, _cut(messages, sizes))
    assert many.balances == one.balances
    assert many.daily == one.daily
    # And both agree with the events, as `ledgerflow reconcile` checks them.
    for account in ACCOUNTS:
        settled = [e.payload for e in many.events if e.account_id == account and e.type.endswith("Settled")]
        change = sum((p.amount if p.TYPE == "DepositSettled" else -p.amount for p in settled), Decimal(0))
        assert many.balances[account] == (Decimal("50") + change, len(settled))
    assert _stored(many.outcomes) == _stored(one.outcomes)


@settings(max_examples=100, deadline=None)
@given(ops=order_ops, picks=redeliveries, sizes=cuts)
@run_async
async def test_orders_batched_equal_one_at_a_time(
    ops: list[tuple[str, str, str, str]], picks: list[tuple[int, int]], sizes: list[int]
) -> None:
    messages = _with_redeliveries([_order(op) for op in ops], picks)
    one, many = await _same(_trading, _cut(messages, sizes))
    assert many.balances == one.balances
    assert many.holdings == one.holdings
    for account in ACCOUNTS:
        fills = [e.payload for e in many.events if e.account_id == account and e.type == "OrderFilled"]
        cash = sum((-f.cash_amount if f.side == "buy" else f.cash_amount for f in fills), Decimal(0))
        assert many.balances[account] == (Decimal("500") + cash, len(fills))
        for asset in PRICES:
            held = sum(
                (f.quantity if f.side == "buy" else -f.quantity for f in fills if f.asset == asset),
                Decimal(0),
            )
            stored = many.holdings.get((account, asset))
            assert (stored[0] if stored else Decimal(0)) == held
    assert _stored(many.outcomes) == _stored(one.outcomes)
