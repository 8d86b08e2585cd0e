"""The operator CLI against the real servers and the running system."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.dynamo.client import dynamodb_client, to_attr
from infra.dynamo.keys import account_pk, balance_sk
from infra.settings import Settings
from schemas.topics import DEPOSIT_COMMANDS, WITHDRAWAL_COMMANDS, dead_letter_topic
from tests.conftest import RunningSystem
from tests.support.api import ApiUser
from tests.support.cli import CliResult, cli
from tests.support.kafka import read_topic, send_raw

pytestmark = pytest.mark.integration


def _one_line_error(result: CliResult) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ledgerflow: error: ")


async def test_topics_lists_every_topic_with_its_partitions(system: RunningSystem) -> None:
    result = await cli("topics")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "commands." in line}
    assert DEPOSIT_COMMANDS in rows
    assert dead_letter_topic(DEPOSIT_COMMANDS) in rows


async def test_lag_shows_the_running_groups(system: RunningSystem, user: ApiUser) -> None:
    await user.wait_for(await user.deposit("3.00"))
    result = await cli("lag")
    assert result.exit_code == 0, result.stderr
    assert "ledger" in result.stdout and DEPOSIT_COMMANDS in result.stdout
    assert "Total lag:" in result.stdout


async def _dead_letters(settings: Settings, key: str, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        records = await read_topic(
            settings.kafka_bootstrap_servers, dead_letter_topic(WITHDRAWAL_COMMANDS), key
        )
        if len(records) >= count or time.monotonic() > deadline:
            return [f"{r.topic}:{r.partition}:{r.offset}" for r in records]
        await asyncio.sleep(0.3)


async def test_dead_letters_are_listed_shown_and_redriven_once(
    system: RunningSystem, settings: Settings
) -> None:
    key = f"cli-{uuid.uuid4().hex[:10]}"
    bad = [b'{"not": "an envelope"}', b"{broken json"]
    await send_raw(
        settings.kafka_bootstrap_servers, WITHDRAWAL_COMMANDS, key, bad, headers=[("x-test", b"cli")]
    )
    ids = await _dead_letters(settings, key, len(bad))
    assert len(ids) == len(bad)

    listed = await cli("dlq", "list", "--topic", WITHDRAWAL_COMMANDS)
    assert listed.exit_code == 0, listed.stderr
    for letter in ids:
        assert letter in listed.stdout
    assert "invalid_envelope" in listed.stdout and "invalid_json" in listed.stdout

    shown = await cli("dlq", "show", ids[1])
    assert shown.exit_code == 0, shown.stderr
    for expected in ("invalid_json", WITHDRAWAL_COMMANDS, key, "{broken json", "header x-test", "ledger"):
        assert expected in shown.stdout

    redriven = await cli("dlq", "redrive", ids[1])
    assert redriven.exit_code == 0, redriven.stderr
    assert f"{ids[1]} -> {WITHDRAWAL_COMMANDS}" in redriven.stdout
    back = [r for r in await read_topic(settings.kafka_bootstrap_servers, WITHDRAWAL_COMMANDS, key)]
    assert [r.value for r in back] == [*bad, bad[1]], "the original bytes go back, keyed as before"
    headers = dict(back[-1].headers)
    assert headers["x-test"] == b"cli", "the original headers travel back"
    assert not [h for h in headers if h.startswith(("x-error", "x-original-", "x-dead-lettered"))]

    again = await cli("dlq", "redrive", ids[1])
    _one_line_error(again)
    assert "--force" in again.stderr

    everything = await cli("dlq", "redrive", "--all", "--topic", WITHDRAWAL_COMMANDS)
    assert everything.exit_code == 0, everything.stderr
    assert ids[1] not in everything.stdout, "--all never sends a letter twice"
    assert f"{ids[0]} -> {WITHDRAWAL_COMMANDS}" in everything.stdout
    relisted = await cli("dlq", "list", "--topic", WITHDRAWAL_COMMANDS)
    row = next(line for line in relisted.stdout.splitlines() if ids[1] in line)
    assert "20" in row.split("│")[-2], "the list shows when it was redriven"


@pytest.fixture
async def throwaway_group(settings: Settings) -> AsyncIterator[str]:
    """A group that has read commands.deposit to its end, committed, and left."""
    group = f"cli-replay-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        DEPOSIT_COMMANDS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        quiet = 0
        while quiet < 5:
            batch = await consumer.getmany(timeout_ms=300)
            quiet = 0 if batch else quiet + 1
        await consumer.commit()
    finally:
        await consumer.stop()
    yield group


def _rows(result: CliResult, topic: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if f" {topic} " in line
    ]


async def test_replay_dry_run_changes_nothing_and_execute_moves_the_group(
    throwaway_group: str, settings: Settings
) -> None:
    dry = await cli("replay", throwaway_group, "--topic", DEPOSIT_COMMANDS, "--to-earliest")
    assert dry.exit_code == 0, dry.stderr
    assert "dry run" in dry.stdout
    rows = _rows(dry, DEPOSIT_COMMANDS)
    assert rows and all(r[2] == r[4] and r[3] == "0" for r in rows), dry.stdout
    total = sum(int(r[5]) for r in rows)
    assert total > 0

    again = await cli("replay", throwaway_group, "--topic", DEPOSIT_COMMANDS, "--to-earliest")
    assert _rows(again, DEPOSIT_COMMANDS) == rows, "a dry run commits nothing"

    done = await cli("replay", throwaway_group, "--topic", DEPOSIT_COMMANDS, "--to-earliest", "--execute")
    assert done.exit_code == 0, done.stderr
    after = await cli("replay", throwaway_group, "--topic", DEPOSIT_COMMANDS, "--to-datetime", "2999-01-01")
    assert after.exit_code == 0, after.stderr
    moved = _rows(after, DEPOSIT_COMMANDS)
    assert all(r[2] == "0" for r in moved), after.stdout
    assert all(r[3] == r[4] for r in moved), "a time after the last message targets the end"


async def test_replay_refuses_while_a_consumer_of_the_group_runs(settings: Settings) -> None:
    group = f"cli-live-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        DEPOSIT_COMMANDS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    stop = asyncio.Event()
    assigned = asyncio.Event()

    async def keep_polling() -> None:
        while not stop.is_set():
            await consumer.getmany(timeout_ms=100)
            if consumer.assignment():
                assigned.set()

    poller = asyncio.create_task(keep_polling())
    try:
        await asyncio.wait_for(assigned.wait(), 60)
        before = await consumer.committed(TopicPartition(DEPOSIT_COMMANDS, 0))
        result = await cli(
            "replay", group, "-t", DEPOSIT_COMMANDS, "--to-earliest", "--execute", timeout_s=180
        )
        _one_line_error(result)
        assert "active member" in result.stderr and "stop its consumers" in result.stderr
        assert await consumer.committed(TopicPartition(DEPOSIT_COMMANDS, 0)) == before
    finally:
        stop.set()
        await poller
        await consumer.stop()


async def test_reconcile_passes_then_fails_on_a_corrupted_balance(
    system: RunningSystem, user: ApiUser, settings: Settings
) -> None:
    await user.wait_for(await user.deposit("40.00"))
    await user.wait_for(await user.withdraw("15.50"))
    healthy = await cli("reconcile")
    assert healthy.exit_code == 0, healthy.stdout + healthy.stderr
    assert "OK" in healthy.stdout

    key = {"PK": to_attr(account_pk(user.account_id)), "SK": to_attr(balance_sk())}
    async with dynamodb_client(settings) as client:
        await client.update_item(
            TableName=settings.dynamodb_table,
            Key=key,
            UpdateExpression="SET available = available + :one",
            ExpressionAttributeValues={":one": to_attr(1)},
        )
        try:
            broken = await cli("reconcile")
        finally:
            await client.update_item(
                TableName=settings.dynamodb_table,
                Key=key,
                UpdateExpression="SET available = available - :one",
                ExpressionAttributeValues={":one": to_attr(1)},
            )
    assert broken.exit_code == 1
    assert user.account_id in broken.stdout and "24.50" in broken.stdout and "25.50" in broken.stdout
    assert (await cli("reconcile")).exit_code == 0


async def test_rebuild_portfolio_refuses_while_its_consumer_runs(system: RunningSystem) -> None:
    result = await cli("rebuild", "portfolio")
    _one_line_error(result)
    assert "portfolio" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "ledger"),
        ("replay", "ledger", "-t", DEPOSIT_COMMANDS),
        ("replay", "ledger", "-t", DEPOSIT_COMMANDS, "--to-earliest", "--to-offset", "3"),
        ("replay", "ledger", "-t", DEPOSIT_COMMANDS, "--to-datetime", "yesterday"),
        ("dlq", "show", "not-an-id"),
        ("dlq", "redrive"),
        ("rebuild", "everything"),
        ("no-such-command",),
    ],
)
async def test_bad_flags_give_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = await cli(*args)
    _one_line_error(result)
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("topics",), {"LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
        (("lag",), {"LEDGERFLOW_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
        (("reconcile",), {"LEDGERFLOW_DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:1"}),
        (("topics",), {"LEDGERFLOW_CLI_TIMEOUT_S": "-1"}),
    ],
)
async def test_unreachable_servers_and_bad_settings_give_one_line(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    began = time.monotonic()
    result = await cli(*args, env=env)
    _one_line_error(result)
    assert time.monotonic() - began < 60
