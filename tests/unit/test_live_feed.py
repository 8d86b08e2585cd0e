"""The live feed's parts that need no broker: where a partition's replay window starts (searched by
the records' timestamps, since Tansu's `offsets_for_times` cannot be trusted) and how a record is read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from api.live.feed import _first_at_or_after, live_record
from producers.prices.feed import tick_envelope
from schemas.topics import BALANCE_EVENTS, DEPOSIT_COMMANDS, PRICES

TP = ("events.balance", 0)


@dataclass
class Record:
    offset: int
    timestamp: int


class FakeProbe:
    """A consumer over one partition whose record at offset i has timestamps[i]; counts its fetches."""

    def __init__(self, timestamps: list[int]) -> None:
        self.timestamps = timestamps
        self.position = 0
        self.fetches = 0

    def assign(self, partitions: list[Any]) -> None:
        pass

    def seek(self, tp: Any, offset: int) -> None:
        self.position = offset

    async def getmany(self, tp: Any, timeout_ms: int, max_records: int) -> dict[Any, list[Record]]:
        self.fetches += 1
        if self.position >= len(self.timestamps):
            return {}
        return {tp: [Record(self.position, self.timestamps[self.position])]}


@pytest.mark.parametrize(
    ("timestamps", "since", "expected"),
    [
        ([], 50, 0),
        ([10, 20, 30], 50, 3),  # all older: start at the end
        ([60, 70, 80], 50, 0),  # all recent: start at the beginning
        ([10, 20, 30, 50, 60], 50, 3),
        ([10] * 1000 + [60] * 3, 50, 1000),
        ([10] * 3 + [60] * 1000, 50, 3),
    ],
)
async def test_the_window_starts_at_the_first_recent_record(
    timestamps: list[int], since: int, expected: int
) -> None:
    probe = FakeProbe(timestamps)
    assert await _first_at_or_after(probe, TP, 0, len(timestamps), since) == expected  # type: ignore[arg-type]


async def test_a_partition_with_few_recent_records_costs_few_probes() -> None:
    probe = FakeProbe([10] * 1_000_000 + [60] * 4)
    assert await _first_at_or_after(probe, TP, 0, 1_000_004, 50) == 1_000_000  # type: ignore[arg-type]
    assert probe.fetches <= 8
    quiet = FakeProbe([10] * 1_000_000)
    assert await _first_at_or_after(quiet, TP, 0, 1_000_000, 50) == 1_000_000  # type: ignore[arg-type]
    assert quiet.fetches == 1


@dataclass
class KafkaRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = 7
    timestamp: int = 1_000


def test_a_command_record_is_known_by_its_envelope_id_and_a_tick_by_its_payload() -> None:
    command_id = uuid.uuid4()
    envelope = f'{{"id": "{command_id}", "type": "Deposit"}}'.encode()
    record = live_record(KafkaRecord(DEPOSIT_COMMANDS, b"acct-1", envelope))
    assert record is not None and record.command_id == command_id and record.account_id == "acct-1"

    tick = tick_envelope("BTC", Decimal("50000.5"))
    price = live_record(KafkaRecord(PRICES, b"BTC", tick.to_bytes()))
    assert price is not None and price.value == tick.payload.model_dump_json().encode()

    assert live_record(KafkaRecord(PRICES, b"BTC", b"not json")) is None
    assert live_record(KafkaRecord(DEPOSIT_COMMANDS, None, envelope)) is None
    unreadable = live_record(KafkaRecord(DEPOSIT_COMMANDS, b"acct-1", b"{"))
    assert unreadable is not None and unreadable.command_id is None


def test_an_outcome_record_is_known_by_the_command_that_caused_it() -> None:
    command_id, event_id = uuid.uuid4(), uuid.uuid4()
    envelope = f'{{"id": "{event_id}", "causation_id": "{command_id}"}}'.encode()
    record = live_record(KafkaRecord(BALANCE_EVENTS, b"acct-1", envelope))
    assert record is not None and record.command_id == command_id and record.kind == "outcome"
