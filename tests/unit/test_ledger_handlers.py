"""The ledger handler with in-memory adapters, wired by the same bootstrap as production."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from consumers.ledger.bootstrap import build_ledger_ports
from consumers.ledger.handlers import LedgerPorts, settle_deposit, settle_withdrawal
from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit, Withdraw
from schemas.topics import BALANCE_EVENTS
from tests.support.fakes import FakeLedgerStore, FakePublisher

ACCOUNT = "acc-1"


@pytest.fixture
def store() -> FakeLedgerStore:
    s = FakeLedgerStore()
    s.open_account(ACCOUNT)
    return s


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def ports(store: FakeLedgerStore, publisher: FakePublisher) -> LedgerPorts:
    return build_ledger_ports(Settings(), store, publisher)


def _published(publisher: FakePublisher) -> list[dict[str, object]]:
    return [json.loads(v) for _, _, v in publisher.published]


async def test_deposit_credits_and_publishes_one_event(
    ports: LedgerPorts, store: FakeLedgerStore, publisher: FakePublisher
) -> None:
    command = envelope_for(Deposit(amount=Decimal("100.25")), ACCOUNT)
    decision = await settle_deposit(command, ports)
    assert decision is not None and decision.settled
    assert store.balances[ACCOUNT][0] == Decimal("100.25")
    (event,) = _published(publisher)
    assert event["type"] == "DepositSettled"
    assert event["causation_id"] == str(command.id)
    assert event["payload"] == {"command_id": str(command.id), "amount": "100.25", "balance_after": "100.25"}
    assert publisher.published[0][0] == BALANCE_EVENTS


async def test_redelivered_command_changes_nothing_and_republishes_the_same_event(
    ports: LedgerPorts, store: FakeLedgerStore, publisher: FakePublisher
) -> None:
    command = envelope_for(Deposit(amount=Decimal("10")), ACCOUNT)
    await settle_deposit(command, ports)
    again = await settle_deposit(command, ports)
    assert again is None
    assert store.balances[ACCOUNT][0] == Decimal("10")
    first, second = _published(publisher)
    assert first == second


async def test_withdrawal_over_balance_is_rejected_and_recorded(
    ports: LedgerPorts, store: FakeLedgerStore, publisher: FakePublisher
) -> None:
    store.open_account(ACCOUNT, Decimal("5"))
    decision = await settle_withdrawal(envelope_for(Withdraw(amount=Decimal("5.01")), ACCOUNT), ports)
    assert decision is not None and decision.reason == "insufficient_funds"
    assert store.balances[ACCOUNT][0] == Decimal("5")
    assert _published(publisher)[0]["type"] == "WithdrawalRejected"


async def test_daily_deposit_limit_counts_settled_deposits_only(
    ports: LedgerPorts, store: FakeLedgerStore
) -> None:
    first = await settle_deposit(envelope_for(Deposit(amount=Decimal("9999.99")), ACCOUNT), ports)
    second = await settle_deposit(envelope_for(Deposit(amount=Decimal("0.02")), ACCOUNT), ports)
    third = await settle_deposit(envelope_for(Deposit(amount=Decimal("0.01")), ACCOUNT), ports)
    assert first is not None and first.settled
    assert second is not None and second.reason == "daily_limit_exceeded"
    assert third is not None and third.settled
    assert store.balances[ACCOUNT][0] == Decimal("10000.00")


async def test_unknown_account_is_rejected(ports: LedgerPorts) -> None:
    decision = await settle_deposit(envelope_for(Deposit(amount=Decimal("1")), "nobody"), ports)
    assert decision is not None and decision.reason == "unknown_account"


async def test_a_conflict_is_decided_again_against_fresh_state(
    ports: LedgerPorts, store: FakeLedgerStore
) -> None:
    store.pending_conflicts = 2
    decision = await settle_deposit(envelope_for(Deposit(amount=Decimal("3")), ACCOUNT), ports)
    assert decision is not None and decision.settled
    assert store.commits == 1


async def test_concurrent_withdrawals_never_overdraw(ports: LedgerPorts, store: FakeLedgerStore) -> None:
    store.open_account(ACCOUNT, Decimal("100"))
    commands = [envelope_for(Withdraw(amount=Decimal("7")), ACCOUNT) for _ in range(40)]
    decisions = await asyncio.gather(*(settle_withdrawal(c, ports) for c in commands))
    settled = [d for d in decisions if d is not None and d.settled]
    assert len(settled) == 14
    assert store.balances[ACCOUNT][0] == Decimal("2")


async def test_event_ids_are_stable_across_decisions(ports: LedgerPorts) -> None:
    command = envelope_for(Deposit(amount=Decimal("1")), ACCOUNT)
    fresh = build_ledger_ports(Settings(), FakeLedgerStore(), FakePublisher())
    a = await settle_deposit(command, ports)
    b = await settle_deposit(command, fresh)
    assert a is not None and b is not None
    assert a.events[0].id == b.events[0].id
