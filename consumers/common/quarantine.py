"""Poison quarantine: an account whose message keeps failing is set aside for its consumer group.

When a handler gives up on a message (consumers.common.attempts), its account is quarantined for the
group, durably (`QUARANTINE#<group>` / `ACCOUNT#<id>`), and the message is dead-lettered. Every later
message of that account in the group is *parked*: recorded in the quarantine's `letters` set, then
dead-lettered as `account_quarantined`. The partition flows on for every other account, and the
quarantined account's effects never happen out of order.

Release (`ledgerflow dlq redrive --account`): the operator's CLI redrives the quarantine's letters in
their original order, each carrying `x-quarantine-pass: <token>`, which lets it through its own
quarantine; it first records which topics it sends to (`releasing`) and how many letters it found, and
the last message it sends to each topic carries `x-quarantine-lift: <release id>`. When a consumer has
handled such a message it strikes that topic off `releasing`; the quarantine is lifted only once every
topic is struck off and no message was parked beyond those the CLI found. So nothing without the pass
can overtake a redriven message: while any is still to come, newcomers are parked too.

The hot path costs no request: each process keeps the group's quarantined accounts in memory, read
again at most every `quarantine_refresh_s` and after every partition assignment. Only a message of a
listed account (or one carrying a pass) is checked with a consistent read before it is parked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

# On redriven messages: the quarantine they may pass through, and (the last per topic) the release id.
PASS_HEADER = "x-quarantine-pass"
LIFT_HEADER = "x-quarantine-lift"
# On dead letters: the quarantine the letter belongs to (what `--account` releases).
QUARANTINE_HEADER = "x-quarantine-id"
HANDLER_ERROR = "handler_error"
ACCOUNT_QUARANTINED = "account_quarantined"


def position(record: Any) -> str:
    """Where a message was read: its identity within a quarantine's letters."""
    return f"{record.topic}:{record.partition}:{record.offset}"


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


@dataclass(frozen=True)
class QuarantineHead:
    """The message whose failure starts a quarantine."""

    account_id: str
    position: str
    command_id: str
    error: str


@dataclass(frozen=True)
class Quarantine:
    account_id: str
    token: str
    head: str
    head_command_id: str
    # Positions of every message dead-lettered under this quarantine, the head's included.
    letters: frozenset[str]
    # Set by a release in progress: its id, the letters it found, the topics whose last message is to come.
    release_id: str | None = None
    release_letters: int | None = None
    releasing: frozenset[str] = field(default_factory=frozenset)

    @property
    def releasable(self) -> bool:
        return not self.releasing and self.release_letters == len(self.letters)


class QuarantineStore(Protocol):
    async def accounts(self, group: str) -> frozenset[str]: ...

    async def get(self, group: str, account_id: str) -> Quarantine | None:
        """A consistent read."""
        ...

    async def begin(self, group: str, head: QuarantineHead, *, replacing: str | None) -> Quarantine | None:
        """A new quarantine, if there is none (`replacing` None) or the current one has that token."""
        ...

    async def add_letter(self, group: str, account_id: str, token: str, position: str) -> bool:
        """Records a letter, if the quarantine still has that token."""
        ...

    async def strike_topic(
        self, group: str, account_id: str, token: str, release_id: str, topic: str
    ) -> Quarantine | None:
        """Strikes a topic off the release in progress; None if the quarantine or release changed."""
        ...

    async def lift(self, group: str, quarantine: Quarantine) -> bool:
        """Deletes the quarantine if it is still exactly releasable as read."""
        ...


@dataclass(frozen=True)
class Admission:
    """What to do with one message: park it under `park_token`, or handle it (perhaps as a redrive)."""

    park_token: str | None = None
    # The quarantine a redriven message passes through, and the release its arrival completes a topic of.
    passing: Quarantine | None = None
    lift_release: str | None = None


HANDLE = Admission()


class AccountGate:
    """One consumer group's quarantine, as one process sees and changes it."""

    def __init__(
        self,
        store: QuarantineStore,
        group: str,
        *,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._group = group
        self._refresh_s = refresh_s
        self._clock = clock
        self._accounts: set[str] = set()
        # Accounts this process found quarantined while a refresh was reading: kept over its answer.
        self._seen_during_refresh: set[str] = set()
        self._loaded_at: float | None = None
        # Bumped by `invalidate`: a read that was already under way then counts as stale.
        self._epoch = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Read the list again before the next message (after a rebalance: partitions new to us)."""
        self._loaded_at = None
        self._epoch += 1

    def listed(self, account_id: str) -> bool:
        return account_id in self._accounts

    async def admit(self, record: Any, account_id: str) -> Admission:
        await self._refresh()
        pass_token = header(record, PASS_HEADER)
        if pass_token is None and account_id not in self._accounts:
            return HANDLE
        while True:
            current = await self._store.get(self._group, account_id)
            if current is None:
                self._accounts.discard(account_id)
                return HANDLE
            self._remember(account_id)
            if pass_token == current.token:
                return Admission(passing=current, lift_release=header(record, LIFT_HEADER))
            if await self._store.add_letter(self._group, account_id, current.token, position(record)):
                return Admission(park_token=current.token, passing=None)
            # Lifted or replaced between the read and the write: decide again on what is there now.

    async def quarantine(self, record: Any, head: QuarantineHead, admission: Admission) -> str:
        """Quarantines the account with `record` as its head; returns the token its letter belongs to.

        A redriven message that fails again replaces the quarantine it was passing through, so the rest
        of that redrive (carrying the old token) is parked behind it. If another partition's failure
        quarantined the account first, this message becomes one of that quarantine's letters.
        """
        replacing = admission.passing.token if admission.passing is not None else None
        while True:
            started = await self._store.begin(self._group, head, replacing=replacing)
            if started is not None:
                self._remember(head.account_id)
                log.error("quarantine.started", quarantine=started.token, head=head.position)
                return started.token
            current = await self._store.get(self._group, head.account_id)
            replacing = None
            if current is not None and await self._store.add_letter(
                self._group, head.account_id, current.token, head.position
            ):
                self._remember(head.account_id)
                return current.token

    async def completed(self, record: Any, account_id: str, admission: Admission) -> None:
        """After a message was handled: if it was the last of a release for its topic, take the step."""
        passing, release_id = admission.passing, admission.lift_release
        if passing is None or release_id is None:
            return
        after = await self._store.strike_topic(
            self._group, account_id, passing.token, release_id, record.topic
        )
        if after is None:
            log.warning("quarantine.release_superseded", quarantine=passing.token, release=release_id)
            return
        if after.releasing:
            return
        if after.release_letters != len(after.letters):
            log.warning(
                "quarantine.kept",
                quarantine=after.token,
                detail="messages were parked after the release read the dead letters; redrive again",
                letters=len(after.letters),
                released=after.release_letters,
            )
            return
        if await self._store.lift(self._group, after):
            self._accounts.discard(account_id)
            log.warning("quarantine.lifted", quarantine=after.token, letters=len(after.letters))

    def _remember(self, account_id: str) -> None:
        self._accounts.add(account_id)
        self._seen_during_refresh.add(account_id)

    async def _refresh(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            self._seen_during_refresh.clear()
            started, epoch = self._clock(), self._epoch
            fresh = await self._store.accounts(self._group)
            # A quarantine this process started while the query ran may be missing from its answer.
            self._accounts = set(fresh) | self._seen_during_refresh
            if epoch == self._epoch:
                self._loaded_at = started

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self._refresh_s
