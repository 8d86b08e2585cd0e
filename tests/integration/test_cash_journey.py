"""A user's cash journey over HTTP, against the real system."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import ApiUser, register

pytestmark = pytest.mark.integration


async def test_deposit_withdraw_and_see_the_result(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    profile = await alice.get("/v1/auth/profile")
    assert profile.status_code == 200
    assert profile.json()["username"] == alice.username
    assert profile.json()["role"] == "customer"

    receipt = await alice.post("/v1/deposits", {"amount": "100.50"})
    assert receipt.status_code == 202
    body = receipt.json()
    assert body["status"] == "accepted" and body["kind"] == "deposit"
    assert body["status_url"] == f"/v1/commands/{body['command_id']}"

    deposit = await alice.wait_for(body["command_id"])
    assert deposit["status"] == "settled"
    assert deposit["result"]["balance_after"] == "100.50"
    assert deposit["accepted_at"] and deposit["completed_at"]

    withdrawal = await alice.settle("/v1/withdrawals", "30.25")
    assert withdrawal["status"] == "settled"
    assert withdrawal["result"]["balance_after"] == "70.25"

    too_much = await alice.settle("/v1/withdrawals", "70.26")
    assert too_much["status"] == "rejected"
    assert too_much["reason"] == "insufficient_funds"

    assert await alice.balance() == "70.25"
    history = (await alice.get("/v1/balance/transactions")).json()
    assert [t["type"] for t in history["items"]] == [
        "WithdrawalRejected",
        "WithdrawalSettled",
        "DepositSettled",
    ]
    assert [t["status"] for t in history["items"]] == ["rejected", "settled", "settled"]

    page = (await alice.get("/v1/balance/transactions", limit=2)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await alice.get("/v1/balance/transactions", limit=2, cursor=page["next_cursor"])).json()
    assert [t["type"] for t in rest["items"]] == ["DepositSettled"]
    assert rest["next_cursor"] is None


async def test_another_user_sees_nothing_of_it(http: httpx.AsyncClient, user: ApiUser) -> None:
    command_id = (await user.settle("/v1/deposits", "42"))["command_id"]
    mallory = await register(http)
    assert (await mallory.get(f"/v1/commands/{command_id}")).status_code == 404
    assert await mallory.balance() == "0.00"
    assert (await mallory.get("/v1/balance/transactions")).json() == {"items": [], "next_cursor": None}
    own_cursor = (await user.get("/v1/balance/transactions", limit=1)).json()
    # A cursor is bound to its account: it cannot be used to page through someone else's history.
    await user.settle("/v1/deposits", "1")
    cursor = (await user.get("/v1/balance/transactions", limit=1)).json()["next_cursor"]
    stolen = await mallory.get("/v1/balance/transactions", cursor=cursor)
    assert stolen.status_code == 422
    assert own_cursor["items"]


async def test_unknown_command_is_404_and_unauthenticated_is_401(
    http: httpx.AsyncClient, user: ApiUser
) -> None:
    assert (await user.get("/v1/commands/7d8e3c56-7a1f-4a0e-9d8b-2c0f5b1e9a11")).status_code == 404
    assert (await user.get("/v1/commands/not-a-uuid")).status_code == 404
    anonymous = await http.get("/v1/balance")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")


async def test_logout_revokes_the_token(user: ApiUser) -> None:
    assert (await user.post("/v1/auth/logout", None)).status_code == 204
    assert (await user.get("/v1/balance")).status_code == 401


async def test_daily_deposit_limit_holds_under_concurrency(user: ApiUser) -> None:
    import asyncio

    ids = await asyncio.gather(*(user.deposit("1500") for _ in range(10)))
    statuses = await asyncio.gather(*(user.wait_for(i) for i in ids))
    settled = [s for s in statuses if s["status"] == "settled"]
    rejected = [s for s in statuses if s["status"] == "rejected"]
    assert len(settled) == 6
    assert {s["reason"] for s in rejected} == {"daily_limit_exceeded"}
    assert await user.balance() == "9000.00"
    # The daily withdrawal limit is separate: 5,000 a day.
    assert (await user.settle("/v1/withdrawals", "5000"))["status"] == "settled"
    over = await user.settle("/v1/withdrawals", "0.01")
    assert over["reason"] == "daily_limit_exceeded"
