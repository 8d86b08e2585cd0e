"""Poison handling in the consumer runtime: bounded attempts, quarantine, parking and release, with fakes.

The release tests send back exactly what `ledgerflow dlq redrive --account` would (its pure plan), so the
consumer side and the CLI side of the protocol are tested together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from consumers.common.attempts import HandlerGaveUp, attempt_bounded
from consumers.common.quarantine import LIFT_HEADER, PASS_HEADER, QUARANTINE_HEADER, AccountGate
from consumers.common.runtime import process_record
from infra.cli.dead_letters import DeadLetter, DeadLetterId
from infra.cli.release import ReleasePlan, plan_release
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit, Withdraw
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, dead_letter_topic
from tests.support.quarantine import FakeQuarantineStore, FakeRecord, FakeSender

GROUP = "ledger"
SETTINGS = Settings(handler_max_attempts=3, retry_initial_backoff_s=0.001, retry_max_backoff_s=0.002)
ACCEPTED: dict[str, Any] = {Deposit.TYPE: Deposit, Withdraw.TYPE: Withdraw}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Consumer:
    """One consumer process of the group: a gate over the shared store, a handler that fails on demand."""

    store: FakeQuarantineStore
    sender: FakeSender
    clock: Clock = field(default_factory=Clock)
    failing: set[str] = field(default_factory=set)
    handled: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    gate: AccountGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = AccountGate(self.store, GROUP, refresh_s=1.0, clock=self.clock)

    async def handle(self, envelope: Any) -> None:
        self.calls += 1
        if envelope.account_id in self.failing:
            raise RuntimeError(f"bug for {envelope.account_id}")
        self.handled.append((envelope.account_id, f"{envelope.payload.amount:.2f}"))

    async def consume(self, record: FakeRecord) -> None:
        await process_record(
            record,
            group=GROUP,
            accepted=ACCEPTED,
            handle=self.handle,
            sender=self.sender,
            settings=SETTINGS,
            gate=self.gate,
        )


@dataclass
class Log:
    """The topics: what producers appended, with offsets per topic (one partition each)."""

    records: dict[str, list[FakeRecord]] = field(default_factory=dict)

    def append(self, topic: str, key: bytes | None, value: bytes | None, headers: list[Any]) -> FakeRecord:
        records = self.records.setdefault(topic, [])
        record = FakeRecord(topic, 0, len(records), key, value, list(headers))
        records.append(record)
        return record

    def command(self, account: str, amount: str, topic: str = DEPOSIT_COMMANDS) -> FakeRecord:
        kind = Deposit if topic == DEPOSIT_COMMANDS else Withdraw
        value = envelope_for(kind(amount=Decimal(amount)), account).to_bytes()
        return self.append(topic, account.encode(), value, [("x-test", b"1")])

    def letters(self, sender: FakeSender) -> list[DeadLetter]:
        return [
            DeadLetter(DeadLetterId(topic, 0, i), key, value, tuple(headers), 0)
            for i, (topic, key, value, headers) in enumerate(sender.sent)
        ]

    def redrive(
        self, sender: FakeSender, account: str, token: str, done: set[DeadLetterId]
    ) -> tuple[list[FakeRecord], ReleasePlan]:
        """What `dlq redrive --account` sends, appended to the original topics."""
        plan = plan_release(self.letters(sender), group=GROUP, account_id=account, token=token, redriven=done)
        done.update(letter.id for letter in (*plan.letters, *plan.duplicates))
        sent = [
            self.append(letter.original_topic, letter.key, letter.value, headers)
            for letter, headers in plan.messages()
        ]
        return sent, plan


def headers_of(sent: tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]) -> dict[str, str]:
    return {k: v.decode() for k, v in sent[3]}


def amount_of(record: FakeRecord) -> str:
    return f"{Decimal(json.loads(record.value or b'{}')['payload']['amount']):.2f}"


# ------------------------------------------------------------------------------------ bounded attempts


async def test_unexpected_failures_are_counted_and_bounded() -> None:
    waits: list[float] = []
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("boom")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(HandlerGaveUp) as raised:
        await attempt_bounded(
            always_fails, max_attempts=4, initial_backoff_s=0.1, max_backoff_s=0.3, sleep=sleep
        )
    assert calls == 4 and raised.value.attempts == 4
    assert raised.value.summary == "ValueError: boom"
    assert len(waits) == 3, "a backoff between attempts, none after the last"
    assert 0.05 <= waits[0] <= 0.15 and waits[2] <= 0.45, "exponential, capped, with jitter"


async def test_transient_faults_are_never_counted() -> None:
    outcomes: list[Exception | None] = [
        EndpointConnectionError(endpoint_url="http://dynamo"),
        EndpointConnectionError(endpoint_url="http://dynamo"),
        EndpointConnectionError(endpoint_url="http://dynamo"),
        ValueError("once"),
        None,
    ]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "done"

    async def sleep(seconds: float) -> None:
        return None

    # Three outages and one bug, with two attempts allowed: the outages never used one up.
    result = await attempt_bounded(
        flaky, max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.001, sleep=sleep
    )
    assert result == "done"


# ----------------------------------------------------------------------------- quarantine and parking


async def test_a_failing_command_is_dead_lettered_and_its_account_parked_while_others_flow() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    consumer = Consumer(store, sender, failing={"bad"})
    head = log.command("bad", "10")
    for record in (head, log.command("good", "1"), log.command("bad", "20"), log.command("good", "2")):
        await consumer.consume(record)

    assert consumer.handled == [("good", "1.00"), ("good", "2.00")]
    assert consumer.calls == 3 + 2, "three attempts for the head; the parked one is never tried"
    first, second = (headers_of(s) for s in sender.sent)
    assert [s[0] for s in sender.sent] == [dead_letter_topic(DEPOSIT_COMMANDS)] * 2
    assert first["x-error"] == "handler_error"
    assert first["x-error-reason"] == "RuntimeError: bug for bad"
    assert first["x-error-type"] == "RuntimeError" and first["x-error-attempts"] == "3"
    assert first["x-original-topic"] == DEPOSIT_COMMANDS and first["x-original-offset"] == "0"
    assert first["x-consumer-group"] == GROUP and first["x-test"] == "1"
    assert second["x-error"] == "account_quarantined" and second["x-original-offset"] == "2"
    quarantine = store.items[(GROUP, "bad")]
    assert first[QUARANTINE_HEADER] == second[QUARANTINE_HEADER] == quarantine.token
    assert quarantine.head == f"{DEPOSIT_COMMANDS}:0:0"
    assert quarantine.letters == {f"{DEPOSIT_COMMANDS}:0:0", f"{DEPOSIT_COMMANDS}:0:2"}
    assert sender.sent[0][2] == head.value, "the original bytes"


async def test_without_a_gate_a_failing_message_is_only_dead_lettered() -> None:
    sender, log = FakeSender(), Log()
    consumer = Consumer(FakeQuarantineStore(), sender, failing={"bad"})
    for record in (log.command("bad", "10"), log.command("bad", "20")):
        await process_record(
            record,
            group="status",
            accepted=ACCEPTED,
            handle=consumer.handle,
            sender=sender,
            settings=SETTINGS,
        )
    assert [headers_of(s)["x-error"] for s in sender.sent] == ["handler_error", "handler_error"]
    assert QUARANTINE_HEADER not in headers_of(sender.sent[0])


async def test_the_hot_path_makes_no_request_between_refreshes() -> None:
    store, log = FakeQuarantineStore(), Log()
    consumer = Consumer(store, FakeSender())
    for i in range(50):
        await consumer.consume(log.command(f"acct-{i % 5}", "1"))
    assert store.calls == ["accounts"], "one read of the list at start, then none within the second"
    consumer.clock.now = 1.5
    await consumer.consume(log.command("acct-0", "1"))
    assert store.calls == ["accounts", "accounts"]
    consumer.gate.invalidate()
    await consumer.consume(log.command("acct-0", "1"))
    assert store.calls == ["accounts"] * 3, "a rebalance reads the list again at once"


async def test_a_partition_moving_to_another_process_keeps_the_account_parked() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    first = Consumer(store, sender, failing={"bad"})
    await first.consume(log.command("bad", "10"))
    second = Consumer(store, sender)
    # The newcomer read the list before the quarantine began; the assignment makes it read again.
    await second.consume(log.command("other", "1"))
    second.gate.invalidate()
    await second.consume(log.command("bad", "20"))
    assert second.handled == [("other", "1.00")]
    assert headers_of(sender.sent[-1])["x-error"] == "account_quarantined"


# ------------------------------------------------------------------------------------------- release


async def test_a_release_settles_the_letters_in_order_then_lifts() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    consumer = Consumer(store, sender, failing={"bad"})
    for amount in ("10", "20", "30"):
        await consumer.consume(log.command("bad", amount))
    token = store.items[(GROUP, "bad")].token

    consumer.failing.clear()  # the fix is deployed
    redriven, plan = log.redrive(sender, "bad", token, set())
    assert [amount_of(r) for r in redriven] == ["10.00", "20.00", "30.00"]
    assert [dict(r.headers).get(LIFT_HEADER) for r in redriven] == [None, None, plan.release_id.encode()]
    assert all(dict(r.headers)["x-redrive-count"] == b"1" for r in redriven)
    assert all(dict(r.headers)[PASS_HEADER] == token.encode() for r in redriven)
    assert not any(k.startswith(("x-error", "x-original-")) for r in redriven for k, _ in r.headers)
    await store.start_release(GROUP, "bad", token, plan.release_id, plan.total, plan.topics)

    # A command accepted meanwhile lands after the redrive on the same partition.
    later = log.command("bad", "40")
    for record in (*redriven, later):
        await consumer.consume(record)
    assert consumer.handled == [("bad", "10.00"), ("bad", "20.00"), ("bad", "30.00"), ("bad", "40.00")]
    assert (GROUP, "bad") not in store.items


async def test_a_command_parked_during_the_release_keeps_the_quarantine_until_redriven() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    consumer = Consumer(store, sender, failing={"bad"})
    await consumer.consume(log.command("bad", "10"))
    await consumer.consume(log.command("bad", "20"))
    token = store.items[(GROUP, "bad")].token
    consumer.failing.clear()
    done: set[DeadLetterId] = set()
    redriven, plan = log.redrive(sender, "bad", token, done)
    await store.start_release(GROUP, "bad", token, plan.release_id, plan.total, plan.topics)

    # Accepted after the CLI read the dead letters but before its messages: ahead of them in the log.
    await consumer.consume(log.command("bad", "15"))
    for record in redriven:
        await consumer.consume(record)
    assert (GROUP, "bad") in store.items, "one letter more than the release found: not lifted"
    await consumer.consume(log.command("bad", "99"))
    assert consumer.handled == [("bad", "10.00"), ("bad", "20.00")]

    again, plan = log.redrive(sender, "bad", token, done)
    assert [amount_of(r) for r in again] == ["15.00", "99.00"], "only what was not sent yet, in order"
    await store.start_release(GROUP, "bad", token, plan.release_id, plan.total, plan.topics)
    for record in again:
        await consumer.consume(record)
    assert [a for _, a in consumer.handled] == ["10.00", "20.00", "15.00", "99.00"]
    assert (GROUP, "bad") not in store.items


async def test_the_quarantine_lifts_only_when_every_topic_has_its_redrive_back() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    consumer = Consumer(store, sender, failing={"bad"})
    await consumer.consume(log.command("bad", "10"))
    await consumer.consume(log.command("bad", "5", WITHDRAWAL_COMMANDS))
    token = store.items[(GROUP, "bad")].token
    consumer.failing.clear()
    redriven, plan = log.redrive(sender, "bad", token, set())
    assert plan.topics == {DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS}
    await store.start_release(GROUP, "bad", token, plan.release_id, plan.total, plan.topics)
    deposit = next(r for r in redriven if r.topic == DEPOSIT_COMMANDS)
    withdrawal = next(r for r in redriven if r.topic == WITHDRAWAL_COMMANDS)

    await consumer.consume(deposit)
    # The withdrawal partition lags: a newer withdrawal sits ahead of the redriven one there.
    await consumer.consume(log.command("bad", "7", WITHDRAWAL_COMMANDS))
    assert headers_of(sender.sent[-1])["x-error"] == "account_quarantined", "not handled before the older one"
    await consumer.consume(withdrawal)
    assert consumer.handled == [("bad", "10.00"), ("bad", "5.00")]


async def test_a_redriven_command_that_fails_again_quarantines_anew_and_parks_the_rest() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    consumer = Consumer(store, sender, failing={"bad"})
    await consumer.consume(log.command("bad", "10"))
    await consumer.consume(log.command("bad", "20"))
    token = store.items[(GROUP, "bad")].token
    done: set[DeadLetterId] = set()
    redriven, plan = log.redrive(sender, "bad", token, done)
    await store.start_release(GROUP, "bad", token, plan.release_id, plan.total, plan.topics)
    for record in redriven:  # the bug is not fixed
        await consumer.consume(record)

    renewed = store.items[(GROUP, "bad")]
    assert renewed.token != token
    assert [headers_of(s)["x-error"] for s in sender.sent[2:]] == ["handler_error", "account_quarantined"]
    assert all(headers_of(s)["x-redrive-count"] == "1" for s in sender.sent[2:]), "the count travels on"
    assert all(headers_of(s)[QUARANTINE_HEADER] == renewed.token for s in sender.sent[2:])
    assert PASS_HEADER not in headers_of(sender.sent[-1]), "a stale pass is not kept on the letter"

    consumer.failing.clear()
    again, plan = log.redrive(sender, "bad", renewed.token, done)
    assert all(dict(r.headers)["x-redrive-count"] == b"2" for r in again)
    await store.start_release(GROUP, "bad", renewed.token, plan.release_id, plan.total, plan.topics)
    for record in again:
        await consumer.consume(record)
    assert consumer.handled == [("bad", "10.00"), ("bad", "20.00")]
    assert (GROUP, "bad") not in store.items


async def test_a_message_dead_lettered_twice_is_redriven_once() -> None:
    store, sender, log = FakeQuarantineStore(), FakeSender(), Log()
    crashed = Consumer(store, sender, failing={"bad"})
    head = log.command("bad", "10")
    await crashed.consume(head)
    # The process died before committing: the next owner gets the head again and parks it.
    successor = Consumer(store, sender)
    await successor.consume(head)
    assert len(sender.sent) == 2
    token = store.items[(GROUP, "bad")].token
    redriven, plan = log.redrive(sender, "bad", token, set())
    assert [amount_of(r) for r in redriven] == ["10.00"] and len(plan.duplicates) == 1
    assert plan.total == len(store.items[(GROUP, "bad")].letters) == 1
