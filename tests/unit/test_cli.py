"""The CLI's pure parts: reconciliation arithmetic, dead-letter ids and headers, replay targets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiokafka import TopicPartition

from infra.cli.dead_letters import DeadLetter, DeadLetterId
from infra.cli.errors import CliError
from infra.cli.reconcile import AccountItems, expected_from_events, reconcile
from infra.cli.replay import PartitionPlan, Target, choose_target


def test_cash_and_holdings_follow_the_settled_events() -> None:
    expected = expected_from_events(
        [
            ("DepositSettled", {"amount": "100.00"}),
            ("WithdrawalRejected", {"amount": "500.00"}),
            ("WithdrawalSettled", {"amount": "30.25"}),
            ("OrderFilled", {"side": "buy", "asset": "BTC", "quantity": "0.5", "cash_amount": "40.00"}),
            ("OrderFilled", {"side": "sell", "asset": "BTC", "quantity": "0.2", "cash_amount": "17.99"}),
            ("PositionChanged", {"asset": "BTC", "quantity": "0.3"}),
        ]
    )
    assert expected.cash == Decimal("47.74")
    assert expected.holdings == {"BTC": Decimal("0.3")}


def test_reconcile_reports_every_kind_of_mismatch() -> None:
    events = [("DepositSettled", {"amount": "10.00"})]
    report = reconcile(
        {
            "ok": AccountItems(events=list(events), event_ids=["a"], balance=Decimal("10.00")),
            "off": AccountItems(events=list(events), event_ids=["b"], balance=Decimal("11.00")),
            "lost": AccountItems(events=list(events), event_ids=["c", "c"], balance=None),
            "held": AccountItems(balance=Decimal(0), holdings={"ETH": Decimal("1")}),
        }
    )
    assert report.accounts == 4
    assert report.duplicate_event_ids == 1
    assert sorted((m.account_id, m.what) for m in report.mismatches) == [
        ("held", "holding ETH"),
        ("lost", "cash (no balance item)"),
        ("off", "cash"),
    ]


def test_dead_letter_ids_round_trip_and_refuse_other_text() -> None:
    parsed = DeadLetterId.parse("commands.deposit.dlq:3:42")
    assert parsed == DeadLetterId("commands.deposit.dlq", 3, 42)
    assert str(parsed) == "commands.deposit.dlq:3:42"
    for bad in ("commands.deposit:3:42", "x.dlq:a:1", "x.dlq:1", ""):
        with pytest.raises(CliError):
            DeadLetterId.parse(bad)


def test_a_redrive_keeps_the_original_headers_only() -> None:
    letter = DeadLetter(
        id=DeadLetterId("commands.deposit.dlq", 0, 1),
        key=b"acct",
        value=b"{}",
        headers=(
            ("traceparent", b"00-abc-def-01"),
            ("x-test", b"1"),
            ("x-error", b"invalid_json"),
            ("x-error-reason", b"..."),
            ("x-original-topic", b"commands.deposit"),
            ("x-original-offset", b"9"),
            ("x-consumer-group", b"ledger"),
            ("x-dead-lettered-at", b"2026-01-01T00:00:00+00:00"),
        ),
        timestamp_ms=0,
    )
    assert letter.redrive_headers() == [("traceparent", b"00-abc-def-01"), ("x-test", b"1")]
    assert letter.original_topic == "commands.deposit"


def test_replay_targets_are_clamped_to_the_log() -> None:
    assert choose_target(Target(to_earliest=True), 5, 20, None) == 5
    assert choose_target(Target(to_offset=2), 5, 20, None) == 5
    assert choose_target(Target(to_offset=99), 5, 20, None) == 20
    assert choose_target(Target(to_offset=7), 5, 20, None) == 7
    plan = PartitionPlan(TopicPartition("t", 0), committed=None, target=0, end=9)
    assert plan.reprocessed == 0
    assert PartitionPlan(TopicPartition("t", 0), committed=9, target=2, end=9).reprocessed == 7
