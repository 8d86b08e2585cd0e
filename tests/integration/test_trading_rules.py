"""Order validation at intake, and the consumer's rejections, against the real system."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from infra.settings import Settings
from tests.support.api import ApiUser
from tests.support.trading import place_order, set_price, trade, wait_for_portfolio

pytestmark = pytest.mark.integration


async def test_thirty_concurrent_buys_and_withdrawals_never_overspend(
    user: ApiUser, http: httpx.AsyncClient, settings: Settings
) -> None:
    await set_price(settings.kafka_bootstrap_servers, http, "ETH", "3001.37")
    assert (await user.settle("/v1/deposits", "1000"))["status"] == "settled"
    # 30 buys of 0.015 ETH at 45.03 each (1,350.90) and 10 withdrawals of 20 race for 1,000.
    buys = await asyncio.gather(*(place_order(user, "buy", "ETH", "0.015") for _ in range(30)))
    withdrawals = await asyncio.gather(*(user.withdraw("20") for _ in range(10)))
    buy_statuses = await asyncio.gather(*(user.wait_for(i, timeout_s=120) for i in buys))
    cash_statuses = await asyncio.gather(*(user.wait_for(i, timeout_s=120) for i in withdrawals))

    filled = [s for s in buy_statuses if s["status"] == "settled"]
    rejected = [s for s in buy_statuses + cash_statuses if s["status"] == "rejected"]
    assert rejected, "together they exceed the cash: some must be rejected"
    assert {s["reason"] for s in rejected} == {"insufficient_funds"}
    assert all(s["result"]["cash_amount"] == "45.03" for s in filled)
    spent = sum((Decimal(s["result"]["cash_amount"]) for s in filled), Decimal(0))
    withdrawn = sum(
        (Decimal(s["result"]["amount"]) for s in cash_statuses if s["status"] == "settled"), Decimal(0)
    )
    balance = Decimal(await user.balance())
    assert balance >= 0
    assert balance == Decimal("1000") - spent - withdrawn
    assert balance < Decimal("45.03") or any(s["status"] == "rejected" for s in cash_statuses)
    for status in buy_statuses + cash_statuses:
        if status["status"] == "settled":
            assert Decimal(status["result"]["balance_after"]) >= 0
    held = str(Decimal("0.015") * len(filled))
    portfolio = await wait_for_portfolio(user, "ETH", held)
    assert portfolio["cash"] == f"{balance:.2f}"


async def test_overselling_is_rejected(user: ApiUser, http: httpx.AsyncClient, settings: Settings) -> None:
    await set_price(settings.kafka_bootstrap_servers, http, "SOL", "150.00")
    await user.settle("/v1/deposits", "100")
    assert (await trade(user, "buy", "SOL", "0.1"))["status"] == "settled"
    oversell = await trade(user, "sell", "SOL", "0.10000001")
    assert oversell["status"] == "rejected" and oversell["reason"] == "insufficient_holdings"
    assert oversell["result"]["order_id"] == oversell["command_id"]
    assert await user.balance() == "85.00"
    sold = await trade(user, "sell", "SOL", "0.1")
    assert sold["status"] == "settled" and sold["result"]["balance_after"] == "100.00"
    rejected = (await user.get(f"/v1/orders/{oversell['command_id']}")).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "insufficient_holdings"
    assert rejected["price"] is None


async def test_an_asset_without_a_price_yet_is_rejected_no_price(user: ApiUser) -> None:
    # No test ticks ZIL: it is known but has never had a price.
    await user.settle("/v1/deposits", "100")
    status = await trade(user, "buy", "ZIL", "1000")
    assert status["status"] == "rejected" and status["reason"] == "no_price"
    assert await user.balance() == "100.00"


async def test_intake_refuses_invalid_orders(
    user: ApiUser, http: httpx.AsyncClient, settings: Settings
) -> None:
    await set_price(settings.kafka_bootstrap_servers, http, "DOGE", "0.125")

    async def refused(body: dict[str, object]) -> list[str]:
        response = await user.post("/v1/orders", body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return [e["field"] for e in response.json()["errors"]]

    order = {"side": "buy", "asset": "DOGE", "quantity": "100", "type": "market"}
    assert await refused({**order, "asset": "NOPE"}) == ["asset"]
    assert await refused({**order, "side": "hold"}) == ["side"]
    assert await refused({**order, "type": "limit"}) == ["type"]
    assert await refused({**order, "quantity": "0.123456789"}) == ["quantity"]
    assert await refused({**order, "quantity": "0"}) == ["quantity"]
    assert await refused({**order, "quantity": 100}) == ["quantity"]
    # Value at 0.125: 7 DOGE is 0.875 (< 1 USD); 80,001 DOGE is 10,000.125 (> 10,000 USD).
    assert await refused({**order, "quantity": "7"}) == ["quantity"]
    assert await refused({**order, "quantity": "80001"}) == ["quantity"]
    assert (await user.post("/v1/orders", {**order, "quantity": "8"})).status_code == 202
    assert (await user.post("/v1/orders", {**order, "quantity": "80000"})).status_code == 202
