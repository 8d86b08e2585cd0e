"""The consumer runtime's batched path (`process_partition`) with fakes: runs settled together, malformed
records dead-lettered and quarantined accounts parked one by one, a failing batch handled again record by
record (so a poison command quarantines only its own account), transient faults retried whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import EndpointConnectionError

from consumers.common.quarantine import AccountGate
from consumers.common.runtime import process_partition
from consumers.common.settle import Inbound
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit
from schemas.envelope import Envelope
from schemas.topics import DEPOSIT_COMMANDS
from tests.support.quarantine import FakeQuarantineStore, FakeRecord, FakeSender

GROUP = "ledger"
SETTINGS = Settings(handler_max_attempts=2, retry_initial_backoff_s=0.001, retry_max_backoff_s=0.002)


def _record(offset: int, account: str, amount: str = "1", value: bytes | None = None) -> FakeRecord:
    body = value if value is not None else envelope_for(Deposit(amount=Decimal(amount)), account).to_bytes()
    return FakeRecord(DEPOSIT_COMMANDS, 0, offset, account.encode(), body)


@dataclass
class Handler:
    """Settles by recording; raises for the accounts in `failing`, transiently `outages` times first."""

    failing: set[str] = field(default_factory=set)
    outages: int = 0
    batches: list[list[str]] = field(default_factory=list)
    singles: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)

    async def one(self, envelope: Envelope[Any]) -> None:
        self.singles.append(envelope.account_id)
        if envelope.account_id in self.failing:
            raise RuntimeError(f"bug for {envelope.account_id}")
        self.settled.append(envelope.account_id)

    async def many(self, inbound: Sequence[Inbound]) -> None:
        self.batches.append([m.envelope.account_id for m in inbound])
        if self.outages:
            self.outages -= 1
            raise EndpointConnectionError(endpoint_url="http://dynamo")
        if any(m.envelope.account_id in self.failing for m in inbound):
            raise RuntimeError("bug")
        self.settled.extend(m.envelope.account_id for m in inbound)


async def _run(
    records: list[FakeRecord], handler: Handler, gate: AccountGate | None, sender: FakeSender
) -> None:
    await process_partition(
        records,
        group=GROUP,
        accepted=lambda _: {Deposit.TYPE: Deposit},
        handle=handler.one,
        settle_batch=handler.many,
        sender=sender,
        settings=SETTINGS,
        gate=gate,
    )


async def test_a_run_is_settled_in_one_call_and_malformed_records_are_dead_lettered() -> None:
    handler, sender = Handler(), FakeSender()
    records = [_record(0, "a"), _record(1, "b", value=b"{not json"), _record(2, "c"), _record(3, "a")]
    await _run(records, handler, AccountGate(FakeQuarantineStore(), GROUP, refresh_s=1.0), sender)
    assert handler.batches == [["a", "c", "a"]] and handler.singles == []
    assert [dict(s[3])["x-error"] for s in sender.sent] == [b"invalid_json"]


async def test_a_failing_batch_falls_back_to_one_at_a_time_and_quarantines_only_the_poison() -> None:
    store, sender = FakeQuarantineStore(), FakeSender()
    handler = Handler(failing={"bad"})
    records = [
        _record(0, "good"),
        _record(1, "bad"),
        _record(2, "other"),
        _record(3, "bad"),
        _record(4, "good"),
    ]
    await _run(records, handler, AccountGate(store, GROUP, refresh_s=1.0), sender)
    assert handler.batches == [["good", "bad", "other", "bad", "good"]]
    assert handler.settled == ["good", "other", "good"]
    assert handler.singles.count("bad") == SETTINGS.handler_max_attempts, "the second 'bad' is parked untried"
    assert [dict(s[3])["x-error"] for s in sender.sent] == [b"handler_error", b"account_quarantined"]
    assert (GROUP, "bad") in store.items


async def test_a_quarantined_accounts_records_are_parked_and_the_rest_batched_around_them() -> None:
    store, sender = FakeQuarantineStore(), FakeSender()
    gate = AccountGate(store, GROUP, refresh_s=1.0)
    first = Handler(failing={"bad"})
    await _run([_record(0, "bad")], first, gate, sender)
    handler = Handler()
    await _run([_record(1, "a"), _record(2, "bad"), _record(3, "b")], handler, gate, sender)
    assert handler.batches == [["a"], ["b"]]
    assert [dict(s[3])["x-error"] for s in sender.sent] == [b"handler_error", b"account_quarantined"]


async def test_a_transient_fault_retries_the_whole_batch() -> None:
    handler, sender = Handler(outages=2), FakeSender()
    await _run([_record(0, "a"), _record(1, "b")], handler, None, sender)
    assert handler.batches == [["a", "b"]] * 3 and handler.settled == ["a", "b"] and handler.singles == []
