"""A handler bug for one account: bounded retries, dead letter, quarantine and parking, then release.

A second ledger consumer is started with `LEDGERFLOW_FAULT_INJECT_ACCOUNT` (test only) in place of the
suite's: its handler raises for one account, as a bug would. The "fix" is the suite's ledger again.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from infra.dynamo.client import dynamodb_client
from infra.dynamo.quarantine import DynamoQuarantineStore
from infra.local.processes import AppProcess
from infra.settings import Settings
from schemas.topics import BALANCE_EVENTS, DEPOSIT_COMMANDS, dead_letter_topic
from tests.conftest import RunningSystem
from tests.support.api import ApiUser, register
from tests.support.cli import cli
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


def _partition(account_id: str, partitions: int) -> int:
    # The producer's own partitioner (murmur2 of the key), as the API's producer uses it.
    every = list(range(partitions))
    return int(DefaultPartitioner()(account_id.encode(), every, every))


async def _neighbour(http: httpx.AsyncClient, account_id: str, partitions: int) -> ApiUser:
    """Another user whose commands share `account_id`'s partition."""
    wanted = _partition(account_id, partitions)
    for _ in range(64):
        other = await register(http)
        if _partition(other.account_id, partitions) == wanted:
            return other
    raise AssertionError("no account on the same partition after 64 tries")


async def _letters(settings: Settings, key: str, count: int) -> list[Any]:
    deadline = time.monotonic() + 60
    while True:
        records = await read_topic(settings.kafka_bootstrap_servers, dead_letter_topic(DEPOSIT_COMMANDS), key)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.3)


def _command_id(record: Any) -> str:
    return str(json.loads(record.value)["id"])


async def test_a_poison_command_quarantines_its_account_until_it_is_released(
    system: RunningSystem, settings: Settings, http: httpx.AsyncClient
) -> None:
    bad = await register(http)
    neighbour = await _neighbour(http, bad.account_id, settings.kafka_command_partitions)
    fault = [f"LEDGERFLOW_FAULT_INJECT_ACCOUNT={bad.account_id}", "LEDGERFLOW_HANDLER_MAX_ATTEMPTS=3"]
    ledger = system.supervisor.stop("ledger")
    system.supervisor.start(AppProcess("ledger-faulty", ["env", *fault, *ledger.argv], ledger.env))
    try:
        commands = [await bad.deposit(amount) for amount in ("10.00", "20.00", "30.00")]
        behind = await neighbour.deposit("7.00")
        assert (await neighbour.wait_for(behind))["status"] == "settled", "the partition moves on"

        letters = await _letters(settings, bad.account_id, len(commands))
        assert [_command_id(r) for r in letters] == commands, "in their original order"
        headers = [dict(r.headers) for r in letters]
        assert [h["x-error"] for h in headers] == [
            b"handler_error",
            b"account_quarantined",
            b"account_quarantined",
        ]
        assert headers[0]["x-error-type"] == b"InjectedFault" and headers[0]["x-error-attempts"] == b"3"
        assert b"InjectedFault" in headers[0]["x-error-reason"]
        assert all(h["x-consumer-group"] == b"ledger" for h in headers)
        offsets = [int(h["x-original-offset"]) for h in headers]
        assert offsets == sorted(offsets)
        for command_id in commands:
            status = (await bad.get(f"/v1/commands/{command_id}")).json()
            assert status["status"] == "accepted"
        assert await bad.balance() == "0.00"
        async with dynamodb_client(settings) as client:
            quarantine = await DynamoQuarantineStore(client, settings.dynamodb_table).get(
                "ledger", bad.account_id
            )
        assert quarantine is not None and quarantine.head_command_id == commands[0]
        assert len(quarantine.letters) == len(commands)
    finally:
        system.supervisor.stop("ledger-faulty")
        system.supervisor.start(ledger)

    released = await cli("dlq", "redrive", "--account", bad.account_id, "--wait", "90", timeout_s=150)
    assert released.exit_code == 0, released.stdout + released.stderr
    assert "quarantine lifted" in released.stdout
    assert released.stdout.count(f"-> {DEPOSIT_COMMANDS}") == len(commands)

    for command_id in commands:
        assert (await bad.wait_for(command_id))["status"] == "settled"
    assert await bad.balance() == "60.00"
    history = (await bad.get("/v1/balance/transactions")).json()["items"]
    after = {t["command_id"]: t["balance_after"] for t in history}
    assert [after[c] for c in commands] == ["10.00", "30.00", "60.00"], "settled in their original order"
    later = await bad.deposit("40.00")
    assert (await bad.wait_for(later))["status"] == "settled", "the quarantine is lifted"
    assert await bad.balance() == "100.00"

    events = [
        json.loads(r.value)
        for r in await read_topic(settings.kafka_bootstrap_servers, BALANCE_EVENTS, bad.account_id)
    ]
    settled = [e["causation_id"] for e in events if e["type"] == "DepositSettled"]
    assert sorted(settled) == sorted([*commands, later]), "each command settled exactly once"

    redriven = [
        r
        for r in await read_topic(settings.kafka_bootstrap_servers, DEPOSIT_COMMANDS, bad.account_id)
        if dict(r.headers).get("x-redrive-count")
    ]
    assert [(_command_id(r), dict(r.headers)["x-redrive-count"]) for r in redriven] == [
        (c, b"1") for c in commands
    ]
    listed = await cli("dlq", "list", "--topic", DEPOSIT_COMMANDS)
    assert listed.exit_code == 0, listed.stderr
    for record in letters:
        row = next(
            line
            for line in listed.stdout.splitlines()
            if f"{record.topic}:{record.partition}:{record.offset}" in line
        )
        assert row.split("│")[-3].strip() == "1", row

    again = await cli("dlq", "redrive", "--account", bad.account_id)
    assert again.exit_code == 1 and "not quarantined" in again.stderr
