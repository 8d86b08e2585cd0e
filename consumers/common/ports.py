"""Ports shared by the consumers: what a handler needs from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from schemas.envelope import Envelope

# What a handler's single transaction came to: written, already written by an earlier delivery (the
# dedupe record exists), or overtaken by a concurrent write (decide again on fresh state).
CommitResult = Literal["committed", "duplicate", "conflict"]


@dataclass(frozen=True)
class StoredOutcome:
    """The events a handler recorded for a command, kept with its dedupe record for republishing."""

    topic: str
    events: tuple[bytes, ...]


class EventPublisher(Protocol):
    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None: ...

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None: ...
