"""The trading handler with in-memory adapters, wired by the same bootstrap as production."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from consumers.trading.bootstrap import build_trading_ports
from consumers.trading.decisions import cash_leg
from consumers.trading.handlers import TradingPorts, settle_order
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import PlaceOrder
from schemas.envelope import derive_event_id
from schemas.events import command_result
from schemas.topics import ORDER_EVENTS
from tests.support.fakes import FakePublisher
from tests.support.trading import FakeTradingStore

ACCOUNT = "acc-1"


@pytest.fixture
def store() -> FakeTradingStore:
    s = FakeTradingStore(prices={"BTC": Decimal("64123.45"), "ETH": Decimal("3001.37"), "ZIL": None})
    s.open_account(ACCOUNT, Decimal("1000"))
    return s


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def ports(store: FakeTradingStore, publisher: FakePublisher) -> TradingPorts:
    return build_trading_ports(Settings(), store, publisher)


def _order(side: str, asset: str, quantity: str) -> PlaceOrder:
    return PlaceOrder.model_validate({"side": side, "asset": asset, "quantity": quantity})


def _published(publisher: FakePublisher) -> list[dict[str, object]]:
    return [json.loads(v) for _, _, v in publisher.published]


async def test_buy_fills_at_the_latest_price_and_rounds_the_cost_up(
    ports: TradingPorts, store: FakeTradingStore, publisher: FakePublisher
) -> None:
    command = envelope_for(_order("buy", "BTC", "0.01"), ACCOUNT)
    decision = await settle_order(command, ports)
    assert decision is not None and decision.settled
    # 0.01 x 64,123.45 = 641.2345 -> 641.24
    assert store.balances[ACCOUNT] == (Decimal("358.76"), 1)
    assert store.holdings[(ACCOUNT, "BTC")] == (Decimal("0.01"), 1)
    (event,) = _published(publisher)
    assert publisher.published[0][0] == ORDER_EVENTS
    assert event["type"] == "OrderFilled"
    assert event["id"] == str(derive_event_id(command.id, "trading"))
    assert event["payload"] == {
        "command_id": str(command.id),
        "order_id": str(command.id),
        "side": "buy",
        "asset": "BTC",
        "quantity": "0.01",
        "price": "64123.45",
        "cash_amount": "641.24",
        "fee": "0.00",
        "balance_after": "358.76",
        "holding_after": "0.01",
    }
    result = command_result(decision.events[0].payload)
    assert {"price", "quantity", "order_id", "balance_after"} <= result.keys()


async def test_sell_rounds_proceeds_down(ports: TradingPorts, store: FakeTradingStore) -> None:
    await settle_order(envelope_for(_order("buy", "BTC", "0.01"), ACCOUNT), ports)
    store.prices["BTC"] = Decimal("65000.99")
    decision = await settle_order(envelope_for(_order("sell", "BTC", "0.004"), ACCOUNT), ports)
    assert decision is not None and decision.leg is not None
    # 0.004 x 65,000.99 = 260.00396 -> 260.00
    assert decision.leg.cash == Decimal("260.00")
    assert store.balances[ACCOUNT][0] == Decimal("618.76")
    assert store.holdings[(ACCOUNT, "BTC")][0] == Decimal("0.006")


@pytest.mark.parametrize(
    ("side", "asset", "quantity", "reason"),
    [
        ("buy", "BTC", "0.02", "insufficient_funds"),
        ("sell", "BTC", "0.00000001", "insufficient_holdings"),
        ("buy", "NOPE", "1", "unknown_asset"),
        ("buy", "not a symbol at all, and long", "1", "unknown_asset"),
        ("buy", "ZIL", "100", "no_price"),
    ],
)
async def test_rejections_change_nothing_and_are_recorded(
    ports: TradingPorts,
    store: FakeTradingStore,
    publisher: FakePublisher,
    side: str,
    asset: str,
    quantity: str,
    reason: str,
) -> None:
    decision = await settle_order(envelope_for(_order(side, asset, quantity), ACCOUNT), ports)
    assert decision is not None and decision.reason == reason
    assert store.balances[ACCOUNT] == (Decimal("1000"), 0)
    assert not store.holdings
    (event,) = _published(publisher)
    assert event["type"] == "OrderRejected"
    assert event["payload"]["reason"] == reason  # type: ignore[index]


async def test_unknown_account_is_rejected(ports: TradingPorts) -> None:
    decision = await settle_order(envelope_for(_order("buy", "BTC", "0.001"), "nobody"), ports)
    assert decision is not None and decision.reason == "unknown_account"


async def test_redelivered_order_changes_nothing_and_republishes_the_same_event(
    ports: TradingPorts, store: FakeTradingStore, publisher: FakePublisher
) -> None:
    command = envelope_for(_order("buy", "BTC", "0.01"), ACCOUNT)
    await settle_order(command, ports)
    store.prices["BTC"] = Decimal("1")  # a new price must not matter to a redelivery
    assert await settle_order(command, ports) is None
    assert store.balances[ACCOUNT][0] == Decimal("358.76")
    first, second = _published(publisher)
    assert first == second


async def test_a_conflict_is_decided_again_against_fresh_state(
    ports: TradingPorts, store: FakeTradingStore
) -> None:
    store.pending_conflicts = 2
    decision = await settle_order(envelope_for(_order("buy", "ETH", "0.1"), ACCOUNT), ports)
    assert decision is not None and decision.settled
    assert store.commits == 1


async def test_concurrent_buys_never_overspend(ports: TradingPorts, store: FakeTradingStore) -> None:
    # 0.015 x 3,001.37 = 45.02055 -> 45.03 each; 1,000 buys 22 of them.
    commands = [envelope_for(_order("buy", "ETH", "0.015"), ACCOUNT) for _ in range(30)]
    decisions = await asyncio.gather(*(settle_order(c, ports) for c in commands))
    filled = [d for d in decisions if d is not None and d.settled]
    assert len(filled) == 22
    assert {d.reason for d in decisions if d is not None and not d.settled} == {"insufficient_funds"}
    spent = sum((d.leg.cash for d in filled if d.leg is not None), Decimal(0))
    assert spent == Decimal("990.66")
    assert store.balances[ACCOUNT][0] == Decimal("1000") - spent == Decimal("9.34")
    assert store.holdings[(ACCOUNT, "ETH")][0] == Decimal("0.330")


async def test_the_fee_is_charged_in_cents_against_the_trader(store: FakeTradingStore) -> None:
    ports = build_trading_ports(Settings(trading_fee_rate=Decimal("0.001")), store, FakePublisher())
    decision = await settle_order(envelope_for(_order("buy", "BTC", "0.01"), ACCOUNT), ports)
    assert decision is not None and decision.leg is not None
    # value 641.2345: fee 0.6412345 -> 0.65; cost 641.24 + 0.65
    assert (decision.leg.fee, decision.leg.cash) == (Decimal("0.65"), Decimal("641.89"))
    sell = cash_leg("sell", Decimal("0.01"), Decimal("64123.45"), Decimal("0.001"))
    assert (sell.fee, sell.cash) == (Decimal("0.65"), Decimal("640.58"))
