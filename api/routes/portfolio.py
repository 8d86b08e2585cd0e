"""The caller's portfolio: cash, positions valued at the latest prices, and the total."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, ResourcesDep
from api.problems import ProblemError
from infra.dynamo.client import as_decimal
from schemas.money import CENT, to_cents
from schemas.trading import trade_value
from schemas.trading_http import Portfolio, PositionView

router = APIRouter(prefix="/v1/portfolio", tags=["portfolio"])


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def value_portfolio(
    cash: Decimal, positions: Sequence[Mapping[str, Any]], prices: Mapping[str, Decimal]
) -> Portfolio:
    """Values positions at the latest prices.

    Rounding, for display only (nothing is settled from these numbers): `quantity`, `average_cost`
    (8 places, from the projection) and `price` are shown exactly; `market_value` (quantity x price) and
    `unrealized_pnl` ((price - average_cost) x quantity) are computed exactly, then rounded to the cent
    half-up, as a statement would; so is `realized_pnl`, which the projection keeps exactly.
    `total_value` is cash plus the rounded market values, so the figures
    on the page add up. Closed positions (quantity 0) are left out; assets are in alphabetical order.
    """
    views: list[PositionView] = []
    total = to_cents(cash)
    for item in sorted(positions, key=lambda p: str(p["asset"])):
        quantity = as_decimal(item.get("quantity"))
        if quantity <= 0:
            continue
        asset = str(item["asset"])
        average = as_decimal(item.get("average_cost"))
        price = prices.get(asset)
        market_value = unrealized = None
        if price is not None:
            market_value = _cents(trade_value(quantity, price))
            unrealized = _cents(trade_value(quantity, price - average))
            total += market_value
        views.append(
            PositionView(
                asset=asset,
                quantity=quantity,
                average_cost=average,
                price=price,
                market_value=market_value,
                unrealized_pnl=unrealized,
                realized_pnl=_cents(as_decimal(item.get("realized_pnl"))),
            )
        )
    return Portfolio(cash=to_cents(cash), positions=views, total_value=total)


@router.get("", response_model=Portfolio)
async def portfolio(user: CurrentUser, resources: ResourcesDep) -> Portfolio:
    """Cash, open positions at the latest prices, and their total."""
    cash = await resources.accounts.available_cash(user.user_id)
    if cash is None:
        raise ProblemError(404, "Not found", "no such account")
    positions = await resources.positions.positions(user.user_id)
    held = [str(p["asset"]) for p in positions if as_decimal(p.get("quantity")) > 0]
    latest = await resources.assets.latest_prices(held)
    return value_portfolio(cash, positions, {symbol: p.price for symbol, p in latest.items()})
