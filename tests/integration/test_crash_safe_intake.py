"""A 202 means exactly once, whatever crashes: Redis losing its data, the API killed mid-request, a broker
that does not answer. Each test runs against a system of its own, whose parts it kills."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from schemas.topics import DEPOSIT_COMMANDS
from tests.support.api import ApiUser, register
from tests.support.isolated import IsolatedSystem, isolated_system
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def isolated(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedSystem]:
    with isolated_system(tmp_path_factory.mktemp("crash-safe-intake"), env) as system:
        yield system


async def _ledger_effects(user: ApiUser) -> list[str]:
    """The settled amounts in the user's history, oldest first."""
    response = await user.get("/v1/balance/transactions", limit=100)
    assert response.status_code == 200, response.text
    return [item["amount"] for item in reversed(response.json()["items"]) if item["status"] == "settled"]


async def _wait_ready(client: httpx.AsyncClient, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await client.get("/v1/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the API did not become ready again"
        await asyncio.sleep(0.2)


async def test_redis_losing_its_data_does_not_double_a_keyed_deposit(isolated: IsolatedSystem) -> None:
    async with httpx.AsyncClient(base_url=isolated.api_url, timeout=30) as client:
        user = await register(client)
        key = f"redis-restart-{uuid.uuid4()}"
        first = await user.post("/v1/deposits", {"amount": "40.00"}, **{"Idempotency-Key": key})
        assert first.status_code == 202, first.text
        await user.wait_for(first.json()["command_id"])

        # Killed and started again: this Redis keeps nothing, the worst case for the intake.
        isolated.kill_server("redis")
        isolated.services.restart("redis")
        await _wait_ready(client)

        retried = await user.post("/v1/deposits", {"amount": "40.00"}, **{"Idempotency-Key": key})
        assert retried.status_code == 202, retried.text
        assert retried.json() == first.json()
        other_body = await user.post("/v1/deposits", {"amount": "41.00"}, **{"Idempotency-Key": key})
        assert other_body.status_code == 422, other_body.text
        assert other_body.json()["errors"][0]["field"] == "header.Idempotency-Key"

        await user.wait_for(retried.json()["command_id"])
        assert await user.balance() == "40.00"
        assert await _ledger_effects(user) == ["40.00"]
        # The retry republished the very same command; the ledger's dedupe made it a no-op.
        published = await read_topic(
            isolated.settings.kafka_bootstrap_servers, DEPOSIT_COMMANDS, user.account_id
        )
        assert {json.loads(record.value)["id"] for record in published} == {first.json()["command_id"]}


async def test_a_logged_out_token_stays_refused_after_redis_loses_its_data(isolated: IsolatedSystem) -> None:
    async with httpx.AsyncClient(base_url=isolated.api_url, timeout=30) as client:
        user = await register(client)
        assert (await user.post("/v1/auth/logout", {})).status_code == 204
        assert (await user.get("/v1/balance")).status_code == 401

        isolated.kill_server("redis")
        isolated.services.restart("redis")
        await _wait_ready(client)

        refused = await user.get("/v1/balance")
        assert refused.status_code == 401, refused.text
        assert "revoked" in refused.json()["detail"]
        # A token that was never revoked still works after the denylist was rebuilt.
        fresh = await register(client)
        assert (await fresh.get("/v1/balance")).status_code == 200


async def test_api_killed_with_keyed_posts_in_flight_every_retry_gets_its_receipt_once(
    isolated: IsolatedSystem,
) -> None:
    async with httpx.AsyncClient(base_url=isolated.api_url, timeout=30) as client:
        users = [await register(client) for _ in range(5)]
        keys = [(users[i % 5], f"kill-{i}-{uuid.uuid4()}", f"{i + 1}.00") for i in range(50)]

        async def post(user: ApiUser, key: str, amount: str) -> httpx.Response | None:
            try:
                return await user.post("/v1/deposits", {"amount": amount}, **{"Idempotency-Key": key})
            except httpx.TransportError:
                return None  # the API died under this request: the client does not know what happened

        in_flight = [asyncio.create_task(post(*item)) for item in keys]
        await asyncio.sleep(0.05)
        isolated.supervisor.kill("api")
        first_answers = await asyncio.gather(*in_flight)
        isolated.restart_app("api", kill=False)
        await _wait_ready(client, timeout_s=60)

        # Every client retries its key until it gets an answer; none may wait long on a 409.
        began = time.monotonic()
        receipts: dict[str, dict[str, str]] = {}
        waited_s: list[float] = []
        for user, key, amount in keys:
            started = time.monotonic()
            while True:
                response = await post(user, key, amount)
                if response is not None and response.status_code == 202:
                    receipts[key] = response.json()
                    break
                assert response is None or response.status_code in {409, 503}, response.text
                assert time.monotonic() - started < 15, f"no receipt for {key} after 15 s"
                await asyncio.sleep(0.5)
            waited_s.append(time.monotonic() - started)
        assert time.monotonic() - began < 60

        for (_, key, _), answer in zip(keys, first_answers, strict=True):
            if answer is not None and answer.status_code == 202:
                assert answer.json() == receipts[key]

        for user in users:
            mine = [(key, amount) for u, key, amount in keys if u is user]
            for key, _ in mine:
                await user.wait_for(receipts[key]["command_id"])
            expected = sum((Decimal(amount) for _, amount in mine), Decimal(0))
            assert await user.balance() == str(expected)
            assert sorted(await _ledger_effects(user)) == sorted(amount for _, amount in mine)


async def test_posts_get_503_promptly_while_the_broker_is_down(isolated: IsolatedSystem) -> None:
    async with httpx.AsyncClient(base_url=isolated.api_url, timeout=30) as client:
        user = await register(client)
        before = await user.post("/v1/deposits", {"amount": "5.00"}, **{"Idempotency-Key": "before"})
        assert before.status_code == 202
        await user.wait_for(before.json()["command_id"])
        isolated.kill_server("tansu")
        try:
            timings = []
            for i in range(3):
                started = time.monotonic()
                response = await user.post(
                    "/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": f"down-{i}"}
                )
                timings.append(time.monotonic() - started)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
            assert max(timings) < isolated.settings.intake_publish_timeout_s + 2, timings
        finally:
            isolated.services.restart("tansu")
