"""A fetch's partitions hand in their runs; the runs waiting together are settled by one call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from consumers.common.combine import CombinedSettle
from consumers.common.settle import Inbound
from producers.commands import envelope_for
from schemas.commands import Deposit


def _run(account: str, n: int) -> list[Inbound]:
    return [Inbound(envelope_for(Deposit(amount=Decimal(i + 1)), account)) for i in range(n)]


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[Inbound]] = []
        self.fail = fail

    async def __call__(self, inbound: Sequence[Inbound]) -> None:
        self.calls.append(list(inbound))
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("store refused")


async def test_every_partitions_run_is_settled_by_one_call_in_order() -> None:
    settle = Recorder()
    combined = CombinedSettle(settle, partitions=3)
    runs = [_run(f"a{p}", 4) for p in range(3)]

    async def partition(run: list[Inbound]) -> None:
        try:
            await combined(run)
        finally:
            combined.partition_done()

    await asyncio.gather(*(partition(run) for run in runs))
    (call,) = settle.calls
    assert sorted(m.envelope.id for m in call) == sorted(m.envelope.id for run in runs for m in run)
    for run in runs:  # each partition's records keep their order
        ids = [m.envelope.id for m in call if m.envelope.account_id == run[0].envelope.account_id]
        assert ids == [m.envelope.id for m in run]


async def test_a_partition_with_nothing_to_settle_holds_nobody_back() -> None:
    settle = Recorder()
    combined = CombinedSettle(settle, partitions=2, max_wait_s=60)
    waiting = asyncio.create_task(combined(_run("a", 2)))
    await asyncio.sleep(0)
    assert not waiting.done()
    combined.partition_done()  # the other partition's records were all dead-lettered or parked
    await asyncio.wait_for(waiting, 1)
    assert len(settle.calls) == 1


async def test_a_slow_partition_holds_the_others_back_only_max_wait() -> None:
    settle = Recorder()
    combined = CombinedSettle(settle, partitions=2, max_wait_s=0.05)
    started = datetime.now(UTC)
    await asyncio.wait_for(combined(_run("a", 1)), 2)
    assert (datetime.now(UTC) - started).total_seconds() >= 0.04
    await asyncio.wait_for(combined(_run("b", 1)), 2)  # the slow one, later: a call of its own
    assert [len(c) for c in settle.calls] == [1, 1]


async def test_a_failed_settlement_fails_every_run_in_it() -> None:
    combined = CombinedSettle(Recorder(fail=True), partitions=2)
    results = await asyncio.gather(combined(_run("a", 1)), combined(_run("b", 1)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]


async def test_a_later_run_of_the_same_fetch_is_settled_again() -> None:
    settle = Recorder()
    combined = CombinedSettle(settle, partitions=2)

    async def first() -> None:
        await combined(_run("a", 1))
        await combined(_run("a", 1))  # a run after a parked record, in the same partition
        combined.partition_done()

    async def second() -> None:
        await combined(_run("b", 2))
        combined.partition_done()

    await asyncio.gather(first(), second())
    assert [len(c) for c in settle.calls] == [3, 1]


@pytest.mark.parametrize("partitions", [1, 4])
async def test_calls_count_settlements(partitions: int) -> None:
    settle = Recorder()
    combined = CombinedSettle(settle, partitions=partitions)
    await asyncio.gather(*(combined(_run(f"p{p}", 1)) for p in range(partitions)))
    assert len(settle.calls) == 1
