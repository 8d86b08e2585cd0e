"""Trading test support: in-memory stores (from tests/support/settlement.py), price ticks onto the
`prices` topic, orders over HTTP, and resetting a consumer group's offsets (to replay a topic into a read
model)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from producers.prices.feed import tick_envelope
from schemas.topics import PRICES
from tests.support.api import ApiUser
from tests.support.kafka import send_raw
from tests.support.settlement import FakePortfolioStore, FakeTradingStore

__all__ = ["FakePortfolioStore", "FakeTradingStore"]

# ------------------------------------------------------------------------------------- real system


async def send_tick(bootstrap: str, asset: str, price: str) -> None:
    """One `PriceTick` for `asset` at `price`, stamped now, straight onto the `prices` topic."""
    await send_raw(bootstrap, PRICES, asset, [tick_envelope(asset, Decimal(price)).to_bytes()])


async def wait_for_price(client: httpx.AsyncClient, asset: str, price: str, timeout_s: float = 60) -> None:
    """Until `GET /v1/assets/{asset}` shows `price`: the tick has reached where trading reads it."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/v1/assets/{asset}")
        if response.status_code == 200 and response.json()["price"] == price:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{asset} never showed price {price}: {response.text}")
        await asyncio.sleep(0.1)


async def set_price(bootstrap: str, client: httpx.AsyncClient, asset: str, price: str) -> None:
    await send_tick(bootstrap, asset, price)
    await wait_for_price(client, asset, price)


async def place_order(user: ApiUser, side: str, asset: str, quantity: str) -> str:
    response = await user.post(
        "/v1/orders", {"side": side, "asset": asset, "quantity": quantity, "type": "market"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "order"
    command_id: str = response.json()["command_id"]
    return command_id


async def trade(user: ApiUser, side: str, asset: str, quantity: str) -> dict[str, Any]:
    return await user.wait_for(await place_order(user, side, asset, quantity))


async def wait_for_portfolio(
    user: ApiUser, asset: str, quantity: str, timeout_s: float = 60
) -> dict[str, Any]:
    """The portfolio once the projection shows `quantity` of `asset` (it lags the fills a little)."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = (await user.get("/v1/portfolio")).json()
        held = {p["asset"]: Decimal(p["quantity"]) for p in body.get("positions", [])}
        if held.get(asset) == Decimal(quantity):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"portfolio never held {quantity} {asset}: {body}")
        await asyncio.sleep(0.1)


async def reset_group_to_earliest(bootstrap: str, group: str, topic: str, timeout_s: float = 60) -> None:
    """Commit offset 0 on every partition of `topic` for `group`, whose consumers must be stopped.

    Tansu refuses commits from a client that has not joined (ARCHITECTURE.md), so this joins the group
    with its id, waits for the assignment of every partition, commits, and leaves.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout_s
        while not partitions or len(consumer.assignment()) < len(partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} was never assigned all of {topic}")
            await consumer.getmany(timeout_ms=200)
            partitions = consumer.partitions_for_topic(topic) or set()
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in consumer.assignment()})
    finally:
        await consumer.stop()
