"""The chaos suite's model of the ledger catches what it must catch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.chaos.model import Sent, StoredEvent, check_account

DAY = date(2026, 1, 1)


def _event(n: int, kind: str, command: str, amount: str, **extra: str) -> StoredEvent:
    payload = {"command_id": command, "amount": amount, **extra}
    return StoredEvent(f"EVENT#2026-01-01T00:00:{n:02d}", f"e{n}", kind, payload)


def test_a_consistent_chain_passes_and_a_wrong_one_fails() -> None:
    sent = [Sent("c1", "a", "deposit", Decimal("100")), Sent("c2", "a", "withdrawal", Decimal("150"))]
    events = [
        _event(1, "DepositSettled", "c1", "100", balance_after="100"),
        _event(2, "WithdrawalRejected", "c2", "150", reason="insufficient_funds"),
    ]
    days = {"c1": DAY, "c2": DAY}
    assert check_account("a", sent, events, days, Decimal("100")).problems == []
    assert check_account("a", sent, events, days, Decimal("99")).problems
    unjustified = [events[0], _event(2, "WithdrawalRejected", "c2", "50", reason="insufficient_funds")]
    sent[1] = Sent("c2", "a", "withdrawal", Decimal("50"))
    assert check_account("a", sent, unjustified, days, Decimal("100")).problems
    assert check_account("a", sent, [events[0]], days, Decimal("100")).problems, "a lost outcome"


def test_history_follows_balance_versions_not_decision_times() -> None:
    """A sell decided first but written after a withdrawal's rejection (the race seen in `make chaos`)."""
    sent = [
        Sent("c1", "a", "deposit", Decimal("100")),
        Sent("c2", "a", "order", None),
        Sent("c3", "a", "withdrawal", Decimal("150")),
    ]
    deposit = StoredEvent(
        "EVENT#2026-01-01T00:00:01",
        "e1",
        "DepositSettled",
        {"command_id": "c1", "amount": "100", "balance_after": "100"},
        1,
    )
    # Decided at :02 against version 1, written as version 2 after the rejection below took effect.
    sell = StoredEvent(
        "EVENT#2026-01-01T00:00:02",
        "e2",
        "OrderFilled",
        {"command_id": "c2", "side": "sell", "cash_amount": "80", "balance_after": "180"},
        2,
    )
    # Decided at :03 against version 1 (balance 100): rightly rejected, though its time is later.
    rejected = StoredEvent(
        "EVENT#2026-01-01T00:00:03",
        "e3",
        "WithdrawalRejected",
        {"command_id": "c3", "amount": "150", "reason": "insufficient_funds"},
        1,
    )
    days = {"c1": DAY, "c3": DAY}
    assert check_account("a", sent, [deposit, sell, rejected], days, Decimal("180")).problems == []
    # Had the rejection been decided against version 2 (balance 180), it would have been wrong.
    late = StoredEvent(rejected.sk, "e3", rejected.type, rejected.payload, 2)
    assert check_account("a", sent, [deposit, sell, late], days, Decimal("180")).problems


def test_the_fault_plan_kills_every_consumer_and_server_and_the_api() -> None:
    import random

    from consumers.registry import CONSUMERS
    from tests.chaos.suite import SERVERS, ChaosConfig, _fault_plan

    consumers = list(CONSUMERS)
    config = ChaosConfig(kills=8, server_kills=4, api_kills=2)
    plan = _fault_plan(config, random.Random(7), consumers, with_api=True)
    kinds = [fault.kind for fault in plan]
    assert kinds.count("consumer") == 8 and kinds.count("server") == 4 and kinds.count("api") == 2
    assert {f.name for f in plan if f.kind == "consumer"} == set(consumers)
    assert {f.name for f in plan if f.kind == "server"} == set(SERVERS)
    # The first kill of each consumer comes before any consumer is killed a second time.
    first_round = [f.name for f in plan if f.kind == "consumer"][: len(consumers)]
    assert sorted(first_round) == sorted(consumers)
