"""Servers SIGKILLed and restarted on durable storage: nothing that got a 202 is lost or doubled.

A system of its own, with its data in a temporary folder as `make run` keeps it in `.data/`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest

from tests.support.api import PASSWORD, ApiUser, register
from tests.support.isolated import IsolatedSystem, isolated_system

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def durable(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedSystem]:
    tmp = tmp_path_factory.mktemp("server-crashes")
    with isolated_system(tmp, env, data_dir=tmp / "data") as system:
        yield system


@dataclass
class Outcomes:
    receipts: dict[str, dict[str, str]] = field(default_factory=dict)
    amounts: dict[str, Decimal] = field(default_factory=dict)
    unavailable_s: list[float] = field(default_factory=list)


async def _deposit_until_accepted(user: ApiUser, amount: str, outcomes: Outcomes, give_up_s: float) -> None:
    """A careful client: one key per deposit, retried on 503 or a lost answer until it gets a receipt."""
    key = f"crash-{uuid.uuid4()}"
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            response = await user.post("/v1/deposits", {"amount": amount}, **{"Idempotency-Key": key})
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        if response.status_code == 202:
            outcomes.receipts[key] = response.json()
            outcomes.amounts[key] = Decimal(amount)
            return
        assert response.status_code in {409, 503}, response.text
        if response.status_code == 503:
            outcomes.unavailable_s.append(time.monotonic() - started)
            assert response.headers.get("retry-after")
        await asyncio.sleep(0.3)
    raise AssertionError(f"deposit with key {key} not accepted within {give_up_s} s")


async def _settled_amounts(user: ApiUser) -> list[Decimal]:
    amounts: list[Decimal] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = await user.get("/v1/balance/transactions", **params)
        assert page.status_code == 200, page.text
        body = page.json()
        amounts += [Decimal(i["amount"]) for i in body["items"] if i["status"] == "settled"]
        cursor = body["next_cursor"]
        if not cursor:
            return amounts


async def test_broker_killed_under_load_every_accepted_deposit_settles_once(durable: IsolatedSystem) -> None:
    async with httpx.AsyncClient(base_url=durable.api_url, timeout=30) as client:
        users = [await register(client) for _ in range(4)]
        outcomes = {u.account_id: Outcomes() for u in users}

        async def steady(user: ApiUser, count: int) -> None:
            for i in range(count):
                await _deposit_until_accepted(user, f"{i % 9 + 1}.00", outcomes[user.account_id], 90)

        load = [asyncio.create_task(steady(user, 40)) for user in users]
        await asyncio.sleep(1.0)
        durable.kill_server("tansu")
        killed_at = time.monotonic()
        await asyncio.sleep(2.0)
        await asyncio.to_thread(durable.services.restart, "tansu")
        back_after_s = time.monotonic() - killed_at
        await asyncio.gather(*load)

        for user in users:
            mine = outcomes[user.account_id]
            for receipt in mine.receipts.values():
                await user.wait_for(receipt["command_id"], timeout_s=90)
            expected = sum(mine.amounts.values(), Decimal(0))
            assert Decimal(await user.balance()) == expected
            assert sorted(await _settled_amounts(user)) == sorted(mine.amounts.values())
        unavailable = [s for o in outcomes.values() for s in o.unavailable_s]
        # Every refusal during the outage came promptly: the intake bounds its wait for the broker.
        limit = durable.settings.intake_publish_timeout_s + 2
        assert all(s < limit for s in unavailable), (unavailable, back_after_s)


async def test_dynamodb_killed_nothing_is_lost_and_reads_are_503_meanwhile(durable: IsolatedSystem) -> None:
    async with httpx.AsyncClient(base_url=durable.api_url, timeout=30) as client:
        user = await register(client)
        await user.wait_for(await user.deposit("70.00"))

        durable.kill_server("dynamodb")
        try:
            down = await user.get("/v1/balance")
            assert down.status_code == 503, down.text
            assert down.headers.get("retry-after")
            # An unkeyed deposit needs only the broker: accepted now, settled once DynamoDB is back.
            during = await user.deposit("5.00")
        finally:
            await asyncio.to_thread(durable.services.restart, "dynamodb")

        settled = await user.wait_for(during, timeout_s=90)
        assert settled["status"] == "settled"
        # The user, the balance and the history all came back from disk.
        login = await client.post("/v1/auth/login", json={"username": user.username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert await user.balance() == "75.00"
        assert sorted(await _settled_amounts(user)) == [Decimal("5.00"), Decimal("70.00")]
