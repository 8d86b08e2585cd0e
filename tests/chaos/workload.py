"""Random commands sent through the HTTP API, as real clients would, with retries that are safe."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx

from tests.chaos.model import Sent
from tests.support.api import ApiUser

CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.0001")
# A client keeps retrying (same key) this long: longer than any outage the suite causes.
RETRY_FOR_S = 120.0


@dataclass(frozen=True)
class Planned:
    account: int
    path: str
    body: dict[str, str]
    kind: str
    amount: Decimal | None


@dataclass
class SendResult:
    sent: list[Sent] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    # Attempts answered 409/429/5xx or not at all, then retried with the same key.
    retries: int = 0


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return (Decimal(rng.randint(low * 100, high * 100)) / 100).quantize(CENT)


def plan_commands(rng: random.Random, count: int, accounts: int, prices: dict[str, Decimal]) -> list[Planned]:
    """Deposits, withdrawals and (when there are priced assets) orders, sized so that daily limits and
    insufficient funds are hit now and then, not all the time."""
    planned = []
    for _ in range(count):
        account = rng.randrange(accounts)
        roll = rng.random()
        if prices and roll < 0.25:
            asset = rng.choice(sorted(prices))
            value = _money(rng, 5, 250)
            quantity = (value / prices[asset]).quantize(QUANTITY_STEP, rounding=ROUND_DOWN)
            if quantity * prices[asset] < 2:
                quantity = (Decimal(3) / prices[asset]).quantize(QUANTITY_STEP) + QUANTITY_STEP
            side = "buy" if rng.random() < 0.65 else "sell"
            body = {"side": side, "asset": asset, "quantity": str(quantity), "type": "market"}
            planned.append(Planned(account, "/v1/orders", body, "order", None))
        elif roll < 0.65:
            amount = _money(rng, 10, 800)
            planned.append(Planned(account, "/v1/deposits", {"amount": str(amount)}, "deposit", amount))
        else:
            amount = _money(rng, 10, 600)
            planned.append(Planned(account, "/v1/withdrawals", {"amount": str(amount)}, "withdrawal", amount))
    return planned


async def send_all(users: list[ApiUser], planned: list[Planned], concurrency: int) -> SendResult:
    result = SendResult()
    limit = asyncio.Semaphore(concurrency)

    async def send(item: Planned) -> None:
        user = users[item.account]
        # The same key on every attempt: a retry after a lost answer cannot queue a second command.
        key = uuid.uuid4().hex
        async with limit:
            deadline = time.monotonic() + RETRY_FOR_S
            attempt = 0
            while time.monotonic() < deadline:
                attempt += 1
                try:
                    response = await user.post(item.path, item.body, **{"Idempotency-Key": key})
                except httpx.TransportError:
                    result.retries += 1
                    await asyncio.sleep(min(0.5 * attempt, 3))
                    continue
                if response.status_code == 202:
                    receipt: dict[str, Any] = response.json()
                    result.sent.append(Sent(receipt["command_id"], user.account_id, item.kind, item.amount))
                    return
                # A server restarting (503), the API's claim of a killed request (409), a rate limit.
                if response.status_code >= 500 or response.status_code in {409, 429}:
                    result.retries += 1
                    await asyncio.sleep(min(0.5 * attempt, 3))
                    continue
                label = f"{item.kind} {response.status_code}"
                result.refused[label] = result.refused.get(label, 0) + 1
                return
            result.failed += 1

    await asyncio.gather(*(send(item) for item in planned))
    return result


async def priced_assets(client: httpx.AsyncClient, wait_s: float) -> dict[str, Decimal]:
    """Assets that have a price, waiting a little for the first ticks of the price feed."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        response = await client.get("/v1/assets", params={"limit": 50})
        if response.status_code == 200:
            body = response.json()
            items: list[dict[str, Any]] = (
                (body.get("items") or body.get("assets") or []) if isinstance(body, dict) else body
            )
            prices = {str(a["symbol"]): Decimal(str(a["price"])) for a in items if a.get("price")}
            if prices:
                return prices
        if asyncio.get_running_loop().time() > deadline:
            return {}
        await asyncio.sleep(0.5)
