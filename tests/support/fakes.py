"""In-memory adapters with the same contracts as the DynamoDB and Kafka ones, for handler unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import Envelope
from tests.support.settlement import FakeLedgerStore

__all__ = ["FakeLedgerStore", "FakePublisher"]


@dataclass
class FakePublisher:
    published: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def publish(self, topic: str, events: Sequence[Envelope[Any]]) -> None:
        self.published.extend((topic, e.account_id, e.to_bytes()) for e in events)

    async def publish_raw(self, topic: str, key: str, values: Sequence[bytes]) -> None:
        self.published.extend((topic, key, v) for v in values)
