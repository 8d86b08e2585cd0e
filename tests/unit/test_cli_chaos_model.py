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
