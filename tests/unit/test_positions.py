"""Position arithmetic (property tests), the portfolio projection's handler, and portfolio valuation."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.routes.portfolio import value_portfolio
from consumers.portfolio.bootstrap import build_portfolio_ports
from consumers.portfolio.handlers import project_order_event
from consumers.portfolio.positions import PLACES, Oversold, Position, apply_fill
from consumers.trading.decisions import cash_leg
from schemas.envelope import Envelope, derive_event_id, utc_now
from schemas.events import Event, OrderFilled, OrderRejected
from schemas.topics import PORTFOLIO_EVENTS
from tests.support.fakes import FakePublisher
from tests.support.trading import FakePortfolioStore

quantities = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000"), places=8)
prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("100000"), places=8)


@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=20))
def test_buys_average_within_their_prices_and_add_up(fills: list[tuple[Decimal, Decimal]]) -> None:
    position = Position()
    for quantity, price in fills:
        position = apply_fill(position, "buy", quantity, price)
    assert position.quantity == sum(q for q, _ in fills)
    low, high = min(p for _, p in fills), max(p for _, p in fills)
    assert low - PLACES <= position.average_cost <= high + PLACES
    exact = sum(q * p for q, p in fills) / position.quantity
    assert abs(position.average_cost - exact) <= PLACES * len(fills)
    assert position.realized_pnl == 0


@given(quantities, prices, prices, st.integers(min_value=1, max_value=100))
def test_selling_everything_realises_the_price_difference(
    quantity: Decimal, bought: Decimal, sold: Decimal, parts: int
) -> None:
    position = apply_fill(Position(), "buy", quantity, bought)
    assert position.average_cost == bought
    part = (quantity / parts).quantize(PLACES, rounding="ROUND_DOWN")
    for _ in range(parts - 1):
        if part > 0:
            position = apply_fill(position, "sell", part, sold)
            assert position.average_cost == bought  # a sell never moves the average
    position = apply_fill(position, "sell", position.quantity, sold)
    assert position.quantity == 0 and position.average_cost == 0
    assert abs(position.realized_pnl - (sold - bought) * quantity) <= PLACES * parts


@given(quantities, prices, quantities)
def test_overselling_is_refused(quantity: Decimal, price: Decimal, extra: Decimal) -> None:
    position = apply_fill(Position(), "buy", quantity, price)
    with pytest.raises(Oversold):
        apply_fill(position, "sell", quantity + extra, price)


@settings(max_examples=200)
@given(quantities, prices)
def test_cash_legs_never_favour_the_trader(quantity: Decimal, price: Decimal) -> None:
    buy = cash_leg("buy", quantity, price, Decimal(0))
    sell = cash_leg("sell", quantity, price, Decimal(0))
    assert buy.cash >= quantity * price >= sell.cash
    assert buy.cash - sell.cash <= Decimal("0.01")
    assert buy.cash.as_tuple().exponent == -2 and sell.cash.as_tuple().exponent == -2


def _fill(side: str, quantity: str, price: str, account: str = "acc-1") -> Envelope[Event]:
    command_id = uuid.uuid4()
    payload = OrderFilled(
        command_id=command_id,
        order_id=command_id,
        side=side,  # type: ignore[arg-type]
        asset="BTC",
        quantity=Decimal(quantity),
        price=Decimal(price),
        cash_amount=Decimal("1.00"),
        fee=Decimal("0.00"),
        balance_after=Decimal("1.00"),
        holding_after=Decimal(quantity),
    )
    return Envelope[Event](
        id=derive_event_id(command_id, "trading"),
        type=payload.TYPE,
        version=1,
        occurred_at=utc_now(),
        account_id=account,
        correlation_id=command_id,
        causation_id=command_id,
        payload=payload,
    )


async def test_projection_applies_each_fill_once_and_republishes_the_same_event() -> None:
    store, publisher = FakePortfolioStore(), FakePublisher()
    ports = build_portfolio_ports(store, publisher)
    buy, sell = _fill("buy", "0.01", "64123.45"), _fill("sell", "0.004", "65000.99")
    for event in (buy, sell, buy, sell):
        await project_order_event(event, ports)
    position, version = store.positions[("acc-1", "BTC")]
    assert (position.quantity, position.average_cost, version) == (
        Decimal("0.006"),
        Decimal("64123.45"),
        2,
    )
    assert position.realized_pnl == Decimal("3.51016")
    published = [json.loads(v) for _, _, v in publisher.published]
    assert {t for t, _, _ in publisher.published} == {PORTFOLIO_EVENTS}
    assert [p["id"] for p in published[2:]] == [p["id"] for p in published[:2]]
    assert published[1]["payload"]["quantity"] == "0.006"


async def test_rejections_move_no_position() -> None:
    store = FakePortfolioStore()
    ports = build_portfolio_ports(store, FakePublisher())
    command_id = uuid.uuid4()
    rejected = OrderRejected(
        command_id=command_id,
        order_id=command_id,
        side="buy",
        asset="BTC",
        quantity=Decimal(1),
        reason="no_price",
    )
    envelope = Envelope[Event](
        id=command_id,
        type=rejected.TYPE,
        version=1,
        occurred_at=utc_now(),
        account_id="acc-1",
        correlation_id=command_id,
        payload=rejected,
    )
    assert await project_order_event(envelope, ports) is None
    assert not store.positions


def test_portfolio_values_round_to_cents_and_add_up() -> None:
    positions = [
        {
            "asset": "BTC",
            "quantity": Decimal("0.006"),
            "average_cost": Decimal("64123.45"),
            "realized_pnl": 1,
        },
        {"asset": "ETH", "quantity": Decimal("0"), "average_cost": Decimal("0"), "realized_pnl": 2},
    ]
    view = value_portfolio(Decimal("618.76"), positions, {"BTC": Decimal("65000.99")})
    body = json.loads(view.model_dump_json())
    assert body == {
        "cash": "618.76",
        "positions": [
            {
                "asset": "BTC",
                "quantity": "0.006",
                "average_cost": "64123.45",
                "price": "65000.99",
                "market_value": "390.01",
                "unrealized_pnl": "5.27",
                "realized_pnl": "1.00",
            }
        ],
        "total_value": "1008.77",
    }
