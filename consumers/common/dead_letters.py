"""Dead-lettering: the original bytes and headers, plus why and where from, on `<topic>.dlq`."""

from __future__ import annotations

from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from consumers.common.inbound import MalformedMessage
from schemas.envelope import utc_now
from schemas.topics import dead_letter_topic

TRUNCATED_BYTES = 64 * 1024


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
    topic = dead_letter_topic(record.topic)
    headers = dead_letter_headers(record, error, group)
    try:
        await sender.send_exact(topic, record.key, record.value, headers)
    except MessageSizeTooLargeError:
        # Bigger than even the dead-letter producer may send: keep the head of it, and say so, rather
        # than block the partition on a message that can never be written anywhere.
        value = (record.value or b"")[:TRUNCATED_BYTES]
        extra = [("x-truncated", b"true"), ("x-original-size", str(len(record.value or b"")).encode())]
        await sender.send_exact(topic, record.key, value, [*headers, *extra])
