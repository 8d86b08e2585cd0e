"""Matching outcome events to the commands the benchmark sent: early, duplicated, never coming."""

from __future__ import annotations

import asyncio
import random

from bench.load import Tracker
from bench.metrics import Recorded
from bench.workload import Planned, Workload


def _setup() -> tuple[Workload, Recorded, Tracker]:
    workload = Workload(1, random.Random(1))
    recorded = Recorded()
    return workload, recorded, Tracker(workload, recorded)


async def test_an_outcome_resolves_its_command_and_is_recorded_once() -> None:
    workload, recorded, tracker = _setup()
    planned = workload.plan(0)
    future = tracker.accepted("c1", planned, sent_at=100.0)
    tracker.outcome("c1", 100.25, settled=True)
    tracker.outcome("c1", 100.30, settled=True)  # redelivered: not a second outcome
    assert await future is True
    assert [(o.sent_at, o.settled_at, o.kind) for o in recorded.outcomes] == [(100.0, 100.25, "deposit")]
    assert tracker.pending == 0
    assert workload.books[0].cash == 200


async def test_an_outcome_read_before_its_post_answer_is_kept_for_it() -> None:
    workload, recorded, tracker = _setup()
    tracker.outcome("c2", 50.5, settled=False)
    future = tracker.accepted("c2", workload.plan(0), sent_at=50.0)
    assert future.done() and future.result() is False
    assert recorded.outcomes[0].latency_s == 0.5 and not recorded.outcomes[0].settled


async def test_giving_up_counts_the_pending_as_unsettled() -> None:
    workload, recorded, tracker = _setup()
    future = tracker.accepted("c3", workload.plan(0), sent_at=7.0)
    tracker.give_up()
    assert recorded.unsettled == [7.0] and tracker.pending == 0
    assert future.cancelled()
    await asyncio.sleep(0)


async def test_funding_deposits_resolve_but_are_not_figures() -> None:
    _, recorded, tracker = _setup()
    future = tracker.accepted("f1", Planned(0, "funding", None, "/v1/deposits", b""), sent_at=1.0)
    tracker.outcome("f1", 2.0, settled=True)
    assert await future is True and recorded.outcomes == []
