"""Announcements of accepted commands (api/live/announce.py): what goes on the channel reads back the same."""

from __future__ import annotations

import uuid

import pytest

from api.live.announce import decode, encode
from api.live.hub import LiveRecord
from schemas.topics import DEPOSIT_COMMANDS, ORDER_COMMANDS


def accepted(topic: str, offset: int, value: bytes) -> LiveRecord:
    return LiveRecord(
        topic=topic,
        partition=offset % 7,
        offset=offset,
        timestamp_ms=1_764_000_000_000 + offset,
        account_id=str(uuid.uuid4()),
        command_id=uuid.uuid4(),
        value=value,
    )


def test_a_batch_of_records_reads_back_exactly() -> None:
    # Values with the separators inside: the length, not a delimiter, ends each one.
    records = [
        accepted(DEPOSIT_COMMANDS, 41, b'{"amount": "1.00"}'),
        accepted(ORDER_COMMANDS, 1_000_000_007, b"line\nbreak\tand tab"),
        accepted(DEPOSIT_COMMANDS, 0, b""),
    ]
    assert decode(encode(records)) == records


@pytest.mark.parametrize(
    "message",
    [
        b"no header end",
        b"commands.deposit\t0\t1\t2\taccount\tnot-a-uuid\t0\n",
        b"commands.deposit\t0\t1\t2\taccount\t" + str(uuid.uuid4()).encode() + b"\t10\nshort",
        b"too\tfew\tfields\n",
    ],
)
def test_a_message_that_is_not_an_announcement_is_refused(message: bytes) -> None:
    with pytest.raises(ValueError):
        decode(message)
