"""The portfolio is a projection of `events.order`: dropped and replayed, it comes back the same."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from infra.dynamo.client import dynamodb_client
from infra.dynamo.portfolio_store import DynamoPortfolioStore
from infra.settings import Settings
from schemas.envelope import derive_event_id
from schemas.topics import ORDER_EVENTS
from tests.conftest import RunningSystem
from tests.support.api import ApiUser, register
from tests.support.trading import reset_group_to_earliest, set_price, trade, wait_for_portfolio

pytestmark = pytest.mark.integration


@pytest.fixture
async def positions(settings: Settings) -> AsyncIterator[DynamoPortfolioStore]:
    async with dynamodb_client(settings) as client:
        yield DynamoPortfolioStore(client, settings.dynamodb_table)


def _fill_id(status: dict[str, Any]) -> uuid.UUID:
    return derive_event_id(uuid.UUID(status["command_id"]), "trading")


async def test_dropped_positions_are_rebuilt_exactly_from_the_topic(
    system: RunningSystem,
    http: httpx.AsyncClient,
    settings: Settings,
    positions: DynamoPortfolioStore,
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    alice, bob = await register(http), await register(http)
    for someone in (alice, bob):
        await someone.settle("/v1/deposits", "500")
    await set_price(bootstrap, http, "ADA", "0.45")
    await set_price(bootstrap, http, "DOT", "6.20")
    trades: list[dict[str, Any]] = [
        await trade(alice, "buy", "ADA", "100"),
        await trade(alice, "buy", "DOT", "10"),
        await trade(bob, "buy", "ADA", "40"),
    ]
    await set_price(bootstrap, http, "ADA", "0.4731")
    trades += [await trade(alice, "buy", "ADA", "50"), await trade(alice, "sell", "ADA", "30.5")]
    await set_price(bootstrap, http, "DOT", "6.3377")
    trades.append(await trade(alice, "sell", "DOT", "4.25"))
    assert all(t["status"] == "settled" for t in trades)
    last = trades[-1]
    await _wait_applied(positions, alice, _fill_id(last))
    await wait_for_portfolio(alice, "DOT", "5.75")
    await wait_for_portfolio(bob, "ADA", "40")
    before_alice = await _snapshot(positions, alice)
    before_bob = await _snapshot(positions, bob)
    portfolio_before = (await alice.get("/v1/portfolio")).json()
    assert {a: p["quantity"] for a, p in before_alice.items()} == {"ADA": "119.5", "DOT": "5.75"}

    portfolio = system.supervisor.stop("portfolio")
    try:
        assert await positions.clear_account(alice.account_id) == 2 + 5
        assert (await alice.get("/v1/portfolio")).json()["positions"] == []
        await reset_group_to_earliest(bootstrap, "portfolio", ORDER_EVENTS)
    finally:
        system.supervisor.start(portfolio)

    await _wait_applied(positions, alice, _fill_id(last))
    assert await _snapshot(positions, alice) == before_alice
    # Bob's fills were replayed too, and skipped: each was applied once already.
    assert await _snapshot(positions, bob) == before_bob
    assert (await alice.get("/v1/portfolio")).json() == portfolio_before


async def _snapshot(store: DynamoPortfolioStore, user: ApiUser) -> dict[str, dict[str, str]]:
    return {
        str(item["asset"]): {
            k: str(item[k]) for k in ("quantity", "average_cost", "realized_pnl", "version", "last_event_id")
        }
        for item in await store.positions(user.account_id)
    }


async def _wait_applied(
    store: DynamoPortfolioStore, user: ApiUser, event_id: uuid.UUID, timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await store.applied_event(user.account_id, event_id):
        if time.monotonic() > deadline:
            raise AssertionError(f"fill {event_id} was never applied to the portfolio")
        await asyncio.sleep(0.2)
