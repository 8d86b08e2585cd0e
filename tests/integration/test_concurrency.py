"""The old system let users overdraw with parallel requests: here the balance never goes negative."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.support.api import ApiUser

pytestmark = pytest.mark.integration


async def test_forty_concurrent_withdrawals_of_7_from_100(user: ApiUser) -> None:
    assert (await user.settle("/v1/deposits", "100"))["status"] == "settled"
    ids = await asyncio.gather(*(user.withdraw("7") for _ in range(40)))
    statuses = await asyncio.gather(*(user.wait_for(i) for i in ids))
    settled = [s for s in statuses if s["status"] == "settled"]
    rejected = [s for s in statuses if s["status"] == "rejected"]
    assert len(settled) == 14
    assert len(rejected) == 26
    assert {s["reason"] for s in rejected} == {"insufficient_funds"}
    assert await user.balance() == "2.00"
    # Every balance the ledger ever reported was non-negative.
    assert min(Decimal(s["result"]["balance_after"]) for s in settled) == Decimal("2.00")
