"""Ports shared by the consumers: what a handler needs from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.envelope import Envelope


@dataclass(frozen=True)
class StoredOutcome:
    """The events a handler recorded for a command, kept with its dedupe record for republishing."""

    topic: str
    events: tuple[bytes, ...]


class EventPublisher(Protocol):
    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None: ...

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None: ...
