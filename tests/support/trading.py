"""Trading test support: in-memory stores, price ticks onto the `prices` topic, orders over HTTP, and
resetting a consumer group's offsets (to replay a topic into a read model)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from consumers.common.ports import CommitResult, StoredOutcome
from consumers.common.ports import CommitResult as PositionCommit
from consumers.portfolio.ports import LoadedPosition
from consumers.portfolio.positions import Position, PositionDecision, PositionState
from consumers.trading.decisions import OrderDecision, OrderState
from consumers.trading.ports import LoadedOrderState
from producers.prices.feed import tick_envelope
from schemas.envelope import Envelope
from schemas.topics import PRICES
from tests.support.api import ApiUser
from tests.support.kafka import send_raw

# ------------------------------------------------------------------------------------------- fakes


@dataclass
class FakeTradingStore:
    """The same contract as DynamoTradingStore, with its conditions checked at commit."""

    balances: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    holdings: dict[tuple[str, str], tuple[Decimal, int]] = field(default_factory=dict)
    # Known assets and their latest price (None: known, but no tick yet).
    prices: dict[str, Decimal | None] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)
    orders: dict[uuid.UUID, OrderDecision] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    pending_conflicts: int = 0
    commits: int = 0

    def open_account(self, account_id: str, available: Decimal = Decimal(0)) -> None:
        self.balances[account_id] = (available, 0)

    async def load(self, account_id: str, command_id: uuid.UUID, asset: str) -> LoadedOrderState:
        # A real store suspends here; so does this one, so that concurrent handlers interleave.
        await asyncio.sleep(0)
        balance = self.balances.get(account_id)
        holding = self.holdings.get((account_id, asset))
        state = OrderState(
            account_exists=balance is not None,
            available=balance[0] if balance else Decimal(0),
            balance_version=balance[1] if balance else 0,
            holding=holding[0] if holding else Decimal(0),
            holding_version=holding[1] if holding else None,
            asset_known=asset in self.prices,
            price=self.prices.get(asset),
        )
        return LoadedOrderState(state=state, outcome=self.outcomes.get(command_id))

    async def commit(self, decision: OrderDecision, topic: str) -> CommitResult:
        await asyncio.sleep(0)
        if decision.command_id in self.outcomes:
            return "duplicate"
        if self.pending_conflicts:
            self.pending_conflicts -= 1
            return "conflict"
        if decision.settled:
            assert decision.leg is not None and decision.new_available is not None
            assert decision.new_holding is not None
            available, version = self.balances[decision.account_id]
            if version != decision.balance_version:
                return "conflict"
            if decision.side == "buy" and available < decision.leg.cash:
                return "conflict"
            key = (decision.account_id, decision.asset)
            held = self.holdings.get(key)
            if (held[1] if held else None) != decision.holding_version:
                return "conflict"
            if decision.side == "sell" and (held is None or held[0] < decision.quantity):
                return "conflict"
            self.balances[decision.account_id] = (decision.new_available, version + 1)
            self.holdings[key] = (decision.new_holding, (held[1] if held else 0) + 1)
        self.outcomes[decision.command_id] = StoredOutcome(
            topic, tuple(e.to_bytes() for e in decision.events)
        )
        self.orders[decision.order_id] = decision
        self.events.extend(decision.events)
        self.commits += 1
        return "committed"


@dataclass
class FakePortfolioStore:
    positions: dict[tuple[str, str], tuple[Position, int]] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, StoredOutcome] = field(default_factory=dict)

    async def load(self, account_id: str, asset: str, source_event_id: uuid.UUID) -> LoadedPosition:
        current = self.positions.get((account_id, asset))
        state = PositionState(
            position=current[0] if current else Position(), version=current[1] if current else None
        )
        return LoadedPosition(state=state, outcome=self.outcomes.get(source_event_id))

    async def commit(self, decision: PositionDecision, topic: str) -> PositionCommit:
        if decision.source_event_id in self.outcomes:
            return "duplicate"
        key = (decision.account_id, decision.asset)
        current = self.positions.get(key)
        if (current[1] if current else None) != decision.expected_version:
            return "conflict"
        self.positions[key] = (decision.position, (decision.expected_version or 0) + 1)
        self.outcomes[decision.source_event_id] = StoredOutcome(
            topic, tuple(e.to_bytes() for e in decision.events)
        )
        return "committed"


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
