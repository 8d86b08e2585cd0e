"""Redelivery, replay and crashes: every command has exactly one effect and one event id."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from decimal import Decimal

import pytest

from infra.settings import Settings
from producers.commands import envelope_for
from schemas.commands import Deposit
from schemas.topics import BALANCE_EVENTS, DEPOSIT_COMMANDS
from tests.conftest import RunningSystem
from tests.support.api import ApiUser
from tests.support.kafka import read_topic, send_raw

pytestmark = pytest.mark.integration


async def _all_transactions(user: ApiUser) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = (await user.get("/v1/balance/transactions", **params)).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_the_same_command_twice_on_kafka_has_one_effect_and_one_event_id(
    user: ApiUser, settings: Settings
) -> None:
    command = envelope_for(Deposit(amount=Decimal("25.00")), user.account_id)
    await send_raw(
        settings.kafka_bootstrap_servers, DEPOSIT_COMMANDS, user.account_id, [command.to_bytes()] * 2
    )
    status = await user.wait_for(str(command.id))
    assert status["status"] == "settled"
    # Both deliveries are handled before we look: the second one republishes.
    deadline = time.monotonic() + 30
    while True:
        records = await read_topic(settings.kafka_bootstrap_servers, BALANCE_EVENTS, user.account_id)
        events = [
            json.loads(r.value) for r in records if json.loads(r.value)["causation_id"] == str(command.id)
        ]
        if len(events) >= 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert len(events) == 2, events
    assert len({e["id"] for e in events}) == 1
    assert await user.balance() == "25.00"
    transactions = await _all_transactions(user)
    assert [t["command_id"] for t in transactions] == [str(command.id)]


async def _wait_all_terminal(user: ApiUser, ids: list[str], timeout_s: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    pending = set(ids)
    results: dict[str, dict[str, object]] = {}
    while pending and time.monotonic() < deadline:
        for command_id in list(pending)[:50]:
            response = await user.get(f"/v1/commands/{command_id}")
            if response.status_code == 200 and response.json()["status"] in {"settled", "rejected"}:
                results[command_id] = response.json()
                pending.discard(command_id)
        await asyncio.sleep(0.1)
    assert not pending, f"{len(pending)} commands never completed"
    return [results[i] for i in ids]


async def _balance_reaches(user: ApiUser, at_least: Decimal, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while Decimal(await user.balance()) < at_least:
        assert time.monotonic() < deadline, "the ledger made no progress"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_a_ledger_stopped_mid_stream_settles_every_command_once(
    user: ApiUser, settings: Settings, system: RunningSystem, stop_signal: signal.Signals
) -> None:
    commands = [envelope_for(Deposit(amount=Decimal("1.00")), user.account_id) for _ in range(600)]
    await send_raw(
        settings.kafka_bootstrap_servers, DEPOSIT_COMMANDS, user.account_id, [c.to_bytes() for c in commands]
    )
    await _balance_reaches(user, Decimal(30))
    system.supervisor.kill("ledger", stop_signal)
    stopped_at = Decimal(await user.balance())
    await asyncio.to_thread(system.supervisor.restart, "ledger", 15)

    statuses = await _wait_all_terminal(user, [str(c.id) for c in commands], timeout_s=180)
    assert {s["status"] for s in statuses} == {"settled"}
    assert await user.balance() == "600.00"
    assert stopped_at < Decimal(600), "the stop happened after the stream had drained"
    transactions = await _all_transactions(user)
    assert len(transactions) == 600
    assert len({t["event_id"] for t in transactions}) == 600
    assert sorted(Decimal(str(t["balance_after"])) for t in transactions) == [
        Decimal(n) for n in range(1, 601)
    ]
