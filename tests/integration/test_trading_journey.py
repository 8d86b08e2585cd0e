"""A trader's journey over HTTP against the real system, with exact numbers.

Prices are set by publishing `PriceTick`s to the `prices` topic; each test trades assets no other test
ticks, so its fills are deterministic.
"""

from __future__ import annotations

import httpx
import pytest

from infra.settings import Settings
from tests.support.api import ApiUser
from tests.support.trading import set_price, trade, wait_for_portfolio

pytestmark = pytest.mark.integration


async def test_assets_are_listed_searchable_and_priced(http: httpx.AsyncClient, settings: Settings) -> None:
    listing = (await http.get("/v1/assets")).json()["items"]
    assert len(listing) >= 50
    assert listing[0]["symbol"] == "BTC" and listing[0]["name"] == "Bitcoin"
    assert [a["symbol"] for a in (await http.get("/v1/assets", params={"limit": 3})).json()["items"]] == [
        "BTC",
        "ETH",
        "USDT",
    ]
    found = (await http.get("/v1/assets", params={"search": "doge"})).json()["items"]
    assert found[0]["symbol"] == "DOGE" and found[0]["name"] == "Dogecoin"
    by_name = (await http.get("/v1/assets", params={"search": "chain"})).json()["items"]
    assert {"LINK", "RUNE"} <= {a["symbol"] for a in by_name}
    await set_price(settings.kafka_bootstrap_servers, http, "XTZ", "0.7215")
    asset = (await http.get("/v1/assets/xtz")).json()
    assert asset["symbol"] == "XTZ" and asset["name"] == "Tezos" and asset["price"] == "0.7215"
    assert asset["updated_at"]
    assert (await http.get("/v1/assets/NOPE")).status_code == 404


async def test_register_deposit_buy_sell_portfolio_and_withdraw_to_zero(
    user: ApiUser, http: httpx.AsyncClient, settings: Settings
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    assert (await user.settle("/v1/deposits", "1000.00"))["status"] == "settled"

    await set_price(bootstrap, http, "BTC", "64123.45")
    buy = await trade(user, "buy", "BTC", "0.01")
    assert buy["status"] == "settled" and buy["kind"] == "order"
    # 0.01 x 64,123.45 = 641.2345, rounded up to 641.24.
    assert buy["result"]["price"] == "64123.45"
    assert buy["result"]["quantity"] == "0.01"
    assert buy["result"]["order_id"] == buy["command_id"]
    assert buy["result"]["cash_amount"] == "641.24"
    assert buy["result"]["balance_after"] == "358.76"
    assert await user.balance() == "358.76"

    await set_price(bootstrap, http, "BTC", "65000.99")
    sell = await trade(user, "sell", "BTC", "0.004")
    assert sell["status"] == "settled"
    # 0.004 x 65,000.99 = 260.00396, rounded down to 260.00.
    assert sell["result"]["cash_amount"] == "260.00"
    assert sell["result"]["balance_after"] == "618.76"

    portfolio = await wait_for_portfolio(user, "BTC", "0.006")
    assert portfolio == {
        "cash": "618.76",
        "positions": [
            {
                "asset": "BTC",
                "quantity": "0.006",
                "average_cost": "64123.45",
                "price": "65000.99",
                # 0.006 x 65,000.99 = 390.00594; (65,000.99 - 64,123.45) x 0.006 = 5.26524
                "market_value": "390.01",
                "unrealized_pnl": "5.27",
                "realized_pnl": "3.51",
            }
        ],
        "total_value": "1008.77",
    }

    orders = (await user.get("/v1/orders")).json()
    assert [(o["side"], o["status"], o["price"]) for o in orders["items"]] == [
        ("sell", "filled", "65000.99"),
        ("buy", "filled", "64123.45"),
    ]
    assert orders["next_cursor"] is None
    page = (await user.get("/v1/orders", limit=1)).json()
    assert page["items"][0]["order_id"] == sell["command_id"] and page["next_cursor"]
    rest = (await user.get("/v1/orders", limit=1, cursor=page["next_cursor"])).json()
    assert [o["order_id"] for o in rest["items"]] == [buy["command_id"]]
    one = (await user.get(f"/v1/orders/{buy['command_id']}")).json()
    assert one["quantity"] == "0.01" and one["cash_amount"] == "641.24" and one["type"] == "market"

    history = (await user.get("/v1/balance/transactions")).json()["items"]
    assert [(t["type"], t["amount"], t["balance_after"]) for t in history] == [
        ("OrderFilled", "260.00", "618.76"),
        ("OrderFilled", "641.24", "358.76"),
        ("DepositSettled", "1000.00", "1000.00"),
    ]

    assert (await user.settle("/v1/withdrawals", "618.76"))["status"] == "settled"
    assert await user.balance() == "0.00"
    final = (await user.get("/v1/portfolio")).json()
    assert final["cash"] == "0.00" and final["total_value"] == "390.01"


async def test_orders_are_private(user: ApiUser, http: httpx.AsyncClient, settings: Settings) -> None:
    from tests.support.api import register

    await user.settle("/v1/deposits", "100")
    await set_price(settings.kafka_bootstrap_servers, http, "AVAX", "28.50")
    filled = await trade(user, "buy", "avax", "1")
    assert filled["status"] == "settled" and filled["result"]["asset"] == "AVAX"
    mallory = await register(http)
    assert (await mallory.get(f"/v1/orders/{filled['command_id']}")).status_code == 404
    assert (await mallory.get("/v1/orders")).json() == {"items": [], "next_cursor": None}
    assert (await mallory.get("/v1/portfolio")).json() == {
        "cash": "0.00",
        "positions": [],
        "total_value": "0.00",
    }
    assert (await http.get("/v1/portfolio")).status_code == 401
    assert (
        await http.post("/v1/orders", json={"side": "buy", "asset": "BTC", "quantity": "1"})
    ).status_code == 401
    assert (await user.get("/v1/orders/not-a-uuid")).status_code == 404
