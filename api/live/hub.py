"""The API process's live view of the command and price topics: one in-process hub per worker.

The feed (api/live/feed.py) hands it every accepted command (announced by the worker that accepted it,
api/live/announce.py), every record of the outcome topics (it settled or was rejected) and `prices`.
The hub keeps a bounded window of recent command and outcome records (for `Last-Event-ID`), wakes the
long polls waiting on a command, and fans each record out to the streams of its account (prices to
every stream). It does no I/O: what a record means to a client is decided where it is sent
(api/command_status.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from prometheus_client import Gauge

from schemas.topics import BALANCE_EVENTS, COMMAND_TOPICS, ORDER_EVENTS, PRICES

# The topics whose records are a command's status changes, in the order cursors name them by index.
STATUS_TOPICS: Final = (*COMMAND_TOPICS, BALANCE_EVENTS, ORDER_EVENTS)
OUTCOME_TOPICS: Final = frozenset({BALANCE_EVENTS, ORDER_EVENTS})
LIVE_TOPICS: Final = (*STATUS_TOPICS, PRICES)

# Summed over the live workers (api/metrics.py).
OPEN_STREAMS = Gauge("ledgerflow_live_streams", "Open event streams", multiprocess_mode="livesum")
LONG_POLLS = Gauge("ledgerflow_live_long_polls", "Long polls waiting", multiprocess_mode="livesum")

RecordKind = Literal["accepted", "outcome", "price"]
Position = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """One Kafka record as the hub sees it. `account_id` is the record's key (every topic is keyed by
    account); `command_id` is the envelope's id for a command, its `causation_id` for an outcome."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    account_id: str
    command_id: uuid.UUID | None
    value: bytes

    @property
    def kind(self) -> RecordKind:
        if self.topic == PRICES:
            return "price"
        return "outcome" if self.topic in OUTCOME_TOPICS else "accepted"

    @property
    def position(self) -> Position:
        return (self.topic, self.partition)


class SubscriberOverflow(Exception):
    """The client read too slowly and its queue filled: the stream ends, and the client's reconnect
    with `Last-Event-ID` replays what it missed from the window."""


@dataclass(eq=False)
class Subscription:
    account_id: str
    limit: int
    _queue: deque[LiveRecord] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False

    def offer(self, record: LiveRecord) -> None:
        if len(self._queue) >= self.limit:
            self.overflowed = True
        else:
            self._queue.append(record)
        self._ready.set()

    async def next(self) -> LiveRecord:
        while not self._queue:
            if self.overflowed:
                raise SubscriberOverflow
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            raise SubscriberOverflow
        return self._queue.popleft()


class LiveHub:
    def __init__(
        self,
        window_s: float,
        max_records: int,
        subscriber_queue: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window_ms = int(window_s * 1000)
        self._max_records = max_records
        self._subscriber_queue = subscriber_queue
        self._clock = clock
        self._window: deque[LiveRecord] = deque()
        # The same records by account, oldest first, for a stream's replay without a scan of the window.
        self._by_account: dict[str, deque[LiveRecord]] = {}
        # Accepted and outcome records by command id while they are in the window.
        self._accepted: dict[uuid.UUID, LiveRecord] = {}
        self._outcomes: dict[uuid.UUID, LiveRecord] = {}
        self._streams: dict[str, set[Subscription]] = {}
        self._price_streams: set[Subscription] = set()
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}

    # ------------------------------------------------------------------------------------- the feed

    def publish(self, record: LiveRecord) -> None:
        if record.kind == "price":
            for subscription in self._price_streams:
                subscription.offer(record)
            return
        if record.kind == "accepted" and record.command_id in self._accepted:
            # Announced and also read back from the command topic while the feed caught up: once.
            return
        self._remember(record)
        if record.command_id is not None and record.kind == "outcome":
            for event in self._waiters.get(record.command_id, ()):
                event.set()
        for subscription in self._streams.get(record.account_id, ()):
            subscription.offer(record)

    def _remember(self, record: LiveRecord) -> None:
        self._window.append(record)
        self._by_account.setdefault(record.account_id, deque()).append(record)
        if record.command_id is not None:
            index = self._outcomes if record.kind == "outcome" else self._accepted
            index[record.command_id] = record
        oldest_ms = int(self._clock() * 1000) - self._window_ms
        while self._window and (
            len(self._window) > self._max_records or self._window[0].timestamp_ms < oldest_ms
        ):
            self._forget(self._window.popleft())

    def _forget(self, record: LiveRecord) -> None:
        # The window is in arrival order and so is each account's deque: the oldest is at the left.
        mine = self._by_account[record.account_id]
        mine.popleft()
        if not mine:
            del self._by_account[record.account_id]
        if record.command_id is not None:
            index = self._outcomes if record.kind == "outcome" else self._accepted
            if index.get(record.command_id) is record:
                del index[record.command_id]

    # --------------------------------------------------------------------------------- the readers

    def accepted_record(self, command_id: uuid.UUID) -> LiveRecord | None:
        return self._accepted.get(command_id)

    def has_outcome(self, command_id: uuid.UUID) -> bool:
        return command_id in self._outcomes

    def recent(self, account_id: str) -> list[LiveRecord]:
        """The account's command and outcome records still in the window, in arrival order."""
        return list(self._by_account.get(account_id, ()))

    def window_size(self) -> int:
        return len(self._window)

    def stream_count(self) -> int:
        return len(self._price_streams)

    @contextlib.contextmanager
    def subscribe(self, account_id: str) -> Iterator[Subscription]:
        """Every record of the account, and every price tick, from now on until the block ends."""
        subscription = Subscription(account_id, self._subscriber_queue)
        self._streams.setdefault(account_id, set()).add(subscription)
        self._price_streams.add(subscription)
        OPEN_STREAMS.inc()
        try:
            yield subscription
        finally:
            OPEN_STREAMS.dec()
            self._price_streams.discard(subscription)
            mine = self._streams.get(account_id)
            if mine is not None:
                mine.discard(subscription)
                if not mine:
                    del self._streams[account_id]

    @contextlib.contextmanager
    def watch(self, command_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set when the command's outcome record arrives; register it before reading the
        status, so that an outcome arriving in between is not missed."""
        event = asyncio.Event()
        self._waiters.setdefault(command_id, set()).add(event)
        LONG_POLLS.inc()
        try:
            yield event
        finally:
            LONG_POLLS.dec()
            waiting = self._waiters.get(command_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[command_id]
