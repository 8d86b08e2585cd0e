"""In-memory quarantine store (the same conditions as DynamoQuarantineStore) and Kafka records, for unit
tests of the consumer runtime's poison handling."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from consumers.common.quarantine import Quarantine, QuarantineHead


@dataclass
class FakeQuarantineStore:
    items: dict[tuple[str, str], Quarantine] = field(default_factory=dict)
    # Requests made, by name: the hot path must make none.
    calls: list[str] = field(default_factory=list)

    async def accounts(self, group: str) -> frozenset[str]:
        self.calls.append("accounts")
        return frozenset(account for g, account in self.items if g == group)

    async def get(self, group: str, account_id: str) -> Quarantine | None:
        self.calls.append("get")
        return self.items.get((group, account_id))

    async def begin(self, group: str, head: QuarantineHead, *, replacing: str | None) -> Quarantine | None:
        self.calls.append("begin")
        current = self.items.get((group, head.account_id))
        if (current is None) != (replacing is None) or (current and current.token != replacing):
            return None
        started = Quarantine(
            head.account_id, uuid.uuid4().hex, head.position, head.command_id, frozenset({head.position})
        )
        self.items[(group, head.account_id)] = started
        return started

    async def add_letter(self, group: str, account_id: str, token: str, position: str) -> bool:
        self.calls.append("add_letter")
        current = self.items.get((group, account_id))
        if current is None or current.token != token:
            return False
        self.items[(group, account_id)] = replace(current, letters=current.letters | {position})
        return True

    async def start_release(
        self, group: str, account_id: str, token: str, release_id: str, letters: int, topics: set[str]
    ) -> bool:
        current = self.items.get((group, account_id))
        if current is None or current.token != token:
            return False
        self.items[(group, account_id)] = replace(
            current, release_id=release_id, release_letters=letters, releasing=frozenset(topics)
        )
        return True

    async def strike_topic(
        self, group: str, account_id: str, token: str, release_id: str, topic: str
    ) -> Quarantine | None:
        self.calls.append("strike_topic")
        current = self.items.get((group, account_id))
        if current is None or current.token != token or current.release_id != release_id:
            return None
        after = replace(current, releasing=current.releasing - {topic})
        self.items[(group, account_id)] = after
        return after

    async def lift(self, group: str, quarantine: Quarantine) -> bool:
        self.calls.append("lift")
        current = self.items.get((group, quarantine.account_id))
        if (
            current is None
            or current.token != quarantine.token
            or current.release_id != quarantine.release_id
        ):
            return False
        if current.releasing or current.release_letters != len(current.letters):
            return False
        del self.items[(group, quarantine.account_id)]
        return True


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int = 0


@dataclass
class FakeSender:
    sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = field(default_factory=list)

    async def send_exact(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, key, value, headers))
