"""The live hub (api/live/hub.py) and the stream cursor (api/live/cursor.py), with records made here."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from api.live.cursor import Cursor, UnreadableCursor
from api.live.hub import LiveHub, LiveRecord, SubscriberOverflow
from schemas.topics import BALANCE_EVENTS, DEPOSIT_COMMANDS, PRICES

_offsets = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def record(
    topic: str,
    account: str,
    command_id: uuid.UUID | None = None,
    *,
    at: float = 1_000_000.0,
    partition: int = 0,
) -> LiveRecord:
    return LiveRecord(
        topic=topic,
        partition=partition,
        offset=next(_offsets),
        timestamp_ms=int(at * 1000),
        account_id=account,
        command_id=command_id,
        value=b"{}",
    )


def hub(
    clock: Clock | None = None, *, window_s: float = 60, max_records: int = 1000, queue: int = 100
) -> LiveHub:
    return LiveHub(window_s, max_records, queue, clock=clock or Clock())


async def test_a_stream_gets_its_own_accounts_records_and_every_price() -> None:
    live = hub()
    with live.subscribe("alice") as alice, live.subscribe("bob") as bob:
        mine = record(DEPOSIT_COMMANDS, "alice", uuid.uuid4())
        theirs = record(DEPOSIT_COMMANDS, "bob", uuid.uuid4())
        tick = record(PRICES, "market")
        for r in (mine, theirs, tick):
            live.publish(r)
        assert [await alice.next(), await alice.next()] == [mine, tick]
        assert [await bob.next(), await bob.next()] == [theirs, tick]
    assert live.stream_count() == 0


async def test_an_outcome_wakes_only_the_waiters_of_its_command() -> None:
    live = hub()
    settled, other = uuid.uuid4(), uuid.uuid4()
    with live.watch(settled) as woken, live.watch(other) as still_waiting:
        live.publish(record(DEPOSIT_COMMANDS, "alice", settled))
        assert not woken.is_set()  # the command being accepted is not an outcome
        live.publish(record(BALANCE_EVENTS, "alice", settled))
        await asyncio.wait_for(woken.wait(), 1)
        assert not still_waiting.is_set()


def test_the_window_keeps_what_is_recent_and_at_most_max_records() -> None:
    clock = Clock()
    live = hub(clock, window_s=10, max_records=3)
    command = uuid.uuid4()
    old = record(DEPOSIT_COMMANDS, "alice", command, at=clock.now - 11)
    live.publish(old)
    assert live.recent("alice") == []  # already older than the window
    kept = [record(DEPOSIT_COMMANDS, "alice", uuid.uuid4(), at=clock.now) for _ in range(4)]
    for r in kept:
        live.publish(r)
    assert live.recent("alice") == kept[1:]
    assert live.window_size() == 3
    assert live.accepted_record(kept[0].command_id or uuid.uuid4()) is None
    assert live.accepted_record(kept[3].command_id or uuid.uuid4()) is kept[3]
    live.publish(record(PRICES, "market"))
    assert live.window_size() == 3  # ticks are never replayed, so never kept


def test_the_index_of_outcomes_follows_the_window() -> None:
    clock = Clock()
    live = hub(clock, window_s=10)
    command = uuid.uuid4()
    live.publish(record(BALANCE_EVENTS, "alice", command, at=clock.now))
    assert live.has_outcome(command)
    clock.now += 11
    live.publish(record(BALANCE_EVENTS, "bob", uuid.uuid4(), at=clock.now))
    assert not live.has_outcome(command)
    assert live.recent("alice") == []


async def test_a_slow_stream_overflows_instead_of_growing() -> None:
    live = hub(queue=2)
    with live.subscribe("alice") as alice:
        for _ in range(3):
            live.publish(record(DEPOSIT_COMMANDS, "alice", uuid.uuid4()))
        with pytest.raises(SubscriberOverflow):
            await alice.next()


def test_a_cursor_round_trips_and_tells_what_is_new() -> None:
    first = record(DEPOSIT_COMMANDS, "alice", uuid.uuid4(), partition=2)
    second = record(BALANCE_EVENTS, "alice", uuid.uuid4(), partition=1)
    cursor = Cursor.after([first])
    parsed = Cursor.parse(str(cursor))
    assert str(parsed) == str(cursor)
    assert not parsed.is_new(first)
    assert parsed.is_new(second)  # a partition the cursor does not name: all of it is new
    parsed.advance(second)
    assert not Cursor.parse(str(parsed)).is_new(second)


@pytest.mark.parametrize("text", ["", "x", "0.1", "9.0.1", "0.0.-1", "0.0.1-", "0.0.1\n", "1" * 600])
def test_a_cursor_this_stream_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(UnreadableCursor):
        Cursor.parse(text)


async def test_a_command_announced_and_read_back_from_its_topic_reaches_a_stream_once() -> None:
    live = hub()
    with live.subscribe("alice") as alice:
        command_id = uuid.uuid4()
        announced = record(DEPOSIT_COMMANDS, "alice", command_id)
        read_back = LiveRecord(**{**_fields(announced), "value": b'{"read": "back"}'})
        live.publish(announced)
        live.publish(read_back)
        tick = record(PRICES, "market")
        live.publish(tick)
        assert [await alice.next(), await alice.next()] == [announced, tick]
    assert live.recent("alice") == [announced]


def _fields(r: LiveRecord) -> dict[str, object]:
    return {name: getattr(r, name) for name in LiveRecord.__slots__}
