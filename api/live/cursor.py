"""A stream's position, sent as each command event's SSE `id` and read back from `Last-Event-ID`.

It names, for each partition the account's status records came from, the offset of the last one sent:
Kafka offsets are the same for every API worker, so a client may reconnect to any of them. Each record
of a status topic is keyed by account id, so an account uses one partition per topic and a cursor
holds at most one entry per status topic. Format: `<topic index>.<partition>.<offset>` joined by `-`,
the topic index into `STATUS_TOPICS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from api.live.hub import STATUS_TOPICS, LiveRecord, Position

_ENTRY: Final = re.compile(r"(\d{1,2})\.(\d{1,4})\.(\d{1,19})")
_MAX_LENGTH: Final = 512


class UnreadableCursor(ValueError):
    pass


class Cursor:
    def __init__(self, offsets: dict[Position, int] | None = None) -> None:
        self._offsets: dict[Position, int] = dict(offsets or {})

    @classmethod
    def after(cls, records: Iterable[LiveRecord]) -> Cursor:
        """The position just past `records` (a fresh stream starts past what the window holds)."""
        cursor = cls()
        for record in records:
            cursor.advance(record)
        return cursor

    @classmethod
    def parse(cls, text: str) -> Cursor:
        if not text or len(text) > _MAX_LENGTH:
            raise UnreadableCursor("not an event id of this stream")
        offsets: dict[Position, int] = {}
        for entry in text.split("-"):
            match = _ENTRY.fullmatch(entry)
            if match is None or int(match[1]) >= len(STATUS_TOPICS):
                raise UnreadableCursor("not an event id of this stream")
            offsets[(STATUS_TOPICS[int(match[1])], int(match[2]))] = int(match[3])
        return cls(offsets)

    def __str__(self) -> str:
        return "-".join(
            f"{STATUS_TOPICS.index(topic)}.{partition}.{offset}"
            for (topic, partition), offset in sorted(self._offsets.items())
        )

    def is_new(self, record: LiveRecord) -> bool:
        """Whether the record lies past the cursor (a partition it does not name: everything is)."""
        return record.offset > self._offsets.get(record.position, -1)

    def advance(self, record: LiveRecord) -> None:
        self._offsets[record.position] = max(record.offset, self._offsets.get(record.position, -1))
