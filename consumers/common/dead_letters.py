"""Dead-lettering: the original bytes and headers, plus why and where from, on `<topic>.dlq`."""

from __future__ import annotations

from typing import Any, Protocol

from consumers.common.inbound import MalformedMessage
from schemas.envelope import utc_now
from schemas.topics import dead_letter_topic


class RawSender(Protocol):
    async def send_exact(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None: ...


def dead_letter_headers(record: Any, error: MalformedMessage, group: str) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("x-error")]
    return [
        *original,
        ("x-error", error.code.encode()),
        ("x-error-reason", error.reason[:2000].encode()),
        ("x-original-topic", record.topic.encode()),
        ("x-original-partition", str(record.partition).encode()),
        ("x-original-offset", str(record.offset).encode()),
        ("x-original-timestamp", str(record.timestamp).encode()),
        ("x-consumer-group", group.encode()),
        ("x-dead-lettered-at", utc_now().isoformat().encode()),
    ]


async def dead_letter(sender: RawSender, record: Any, error: MalformedMessage, group: str) -> None:
    await sender.send_exact(
        dead_letter_topic(record.topic), record.key, record.value, dead_letter_headers(record, error, group)
    )
