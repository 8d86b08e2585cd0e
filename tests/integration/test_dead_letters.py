"""Poison messages are dead-lettered with the reason, and the partition keeps flowing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit
from schemas.topics import BALANCE_EVENTS, DEPOSIT_COMMANDS, dead_letter_topic
from tests.support.api import ApiUser
from tests.support.kafka import read_topic, send_raw

pytestmark = pytest.mark.integration


def _valid(account_id: str) -> dict[str, Any]:
    return json.loads(envelope_for(Deposit(amount=Decimal("1.00")), account_id).to_bytes())


def _poison(account_id: str) -> list[tuple[str, bytes]]:
    wrong_schema = _valid(account_id)
    wrong_schema["payload"] = {"amount": 12.5}
    unknown_version = _valid(account_id) | {"version": 99}
    missing_field = {k: v for k, v in _valid(account_id).items() if k != "correlation_id"}
    wrong_type = _valid(account_id) | {"type": "Withdraw"}
    return [
        ("invalid_json", b"{not json"),
        ("invalid_payload", json.dumps(wrong_schema).encode()),
        ("unsupported_version", json.dumps(unknown_version).encode()),
        ("invalid_envelope", json.dumps(missing_field).encode()),
        ("unexpected_type", json.dumps(wrong_type).encode()),
        (
            "message_too_large",
            b" " * (600 * 1024) + json.dumps(_valid(account_id)).encode() + b" " * (500 * 1024),
        ),
    ]


async def test_poison_messages_are_dead_lettered_and_the_next_command_settles(
    user: ApiUser, settings: Settings
) -> None:
    poison = _poison(user.account_id)
    behind = envelope_for(Deposit(amount=Decimal("5.00")), user.account_id)
    bootstrap = settings.kafka_bootstrap_servers
    await send_raw(
        bootstrap,
        DEPOSIT_COMMANDS,
        user.account_id,
        [raw for _, raw in poison] + [behind.to_bytes()],
        headers=[("x-test", b"poison")],
    )
    assert (await user.wait_for(str(behind.id)))["status"] == "settled"
    assert await user.balance() == "5.00"

    deadline = time.monotonic() + 20
    while True:
        dead = await read_topic(bootstrap, dead_letter_topic(DEPOSIT_COMMANDS), user.account_id)
        if len(dead) >= len(poison) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert [r.value for r in dead] == [raw for _, raw in poison]
    for (code, _), record in zip(poison, dead, strict=True):
        headers = dict(record.headers)
        assert headers["x-error"].decode() == code
        assert headers["x-error-reason"]
        assert headers["x-original-topic"].decode() == DEPOSIT_COMMANDS
        assert int(headers["x-original-offset"]) >= 0
        assert headers["x-consumer-group"] == b"ledger"
        assert headers["x-test"] == b"poison", "the original headers travel with the dead letter"
    reasons = {dict(r.headers)["x-error"].decode(): dict(r.headers)["x-error-reason"].decode() for r in dead}
    assert "payload.amount" in reasons["invalid_payload"] or "amount" in reasons["invalid_payload"]
    assert "99" in reasons["unsupported_version"]
    assert "correlation_id" in reasons["invalid_envelope"]


async def test_a_command_for_an_unknown_account_is_a_business_rejection(settings: Settings) -> None:
    ghost = str(uuid.uuid4())
    command = envelope_for(Deposit(amount=Decimal("5.00")), ghost)
    bootstrap = settings.kafka_bootstrap_servers
    await send_raw(bootstrap, DEPOSIT_COMMANDS, ghost, [command.to_bytes()])
    deadline = time.monotonic() + 30
    events: list[dict[str, Any]] = []
    while not events and time.monotonic() < deadline:
        events = [json.loads(r.value) for r in await read_topic(bootstrap, BALANCE_EVENTS, ghost)]
        await asyncio.sleep(0.3)
    assert [(e["type"], e["payload"]["reason"]) for e in events] == [("DepositRejected", "unknown_account")]
    assert await read_topic(bootstrap, dead_letter_topic(DEPOSIT_COMMANDS), ghost) == []
