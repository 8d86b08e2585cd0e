"""Dead-lettering: the original bytes and headers, plus why and where from, on `<topic>.dlq`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from consumers.common import metrics
from schemas.envelope import utc_now
from schemas.topics import dead_letter_topic

TRUNCATED_BYTES = 64 * 1024
# Headers a previous dead-lettering or redrive added: a letter describes only its own failure. (The
# redrive count stays: it is the message's history, not this failure's.)
_STALE_PREFIXES = ("x-error", "x-quarantine-")


class RawSender(Protocol):
    async def send_exact(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None: ...


def dead_letter_headers(
    record: Any, group: str, code: str, reason: str, extra: Sequence[tuple[str, bytes]] = ()
) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith(_STALE_PREFIXES)]
    return [
        *original,
        ("x-error", code.encode()),
        ("x-error-reason", reason[:2000].encode()),
        ("x-original-topic", record.topic.encode()),
        ("x-original-partition", str(record.partition).encode()),
        ("x-original-offset", str(record.offset).encode()),
        ("x-original-timestamp", str(record.timestamp).encode()),
        ("x-consumer-group", group.encode()),
        ("x-dead-lettered-at", utc_now().isoformat().encode()),
        *extra,
    ]


async def dead_letter(
    sender: RawSender,
    record: Any,
    group: str,
    *,
    code: str,
    reason: str,
    extra: Sequence[tuple[str, bytes]] = (),
) -> None:
    topic = dead_letter_topic(record.topic)
    headers = dead_letter_headers(record, group, code, reason, extra)
    try:
        await sender.send_exact(topic, record.key, record.value, headers)
    except MessageSizeTooLargeError:
        # Bigger than even the dead-letter producer may send: keep the head of it, and say so, rather
        # than block the partition on a message that can never be written anywhere.
        value = (record.value or b"")[:TRUNCATED_BYTES]
        extra_size = [("x-truncated", b"true"), ("x-original-size", str(len(record.value or b"")).encode())]
        await sender.send_exact(topic, record.key, value, [*headers, *extra_size])
    metrics.count_dead_letter(record.topic, code)
