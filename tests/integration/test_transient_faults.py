"""A dependency that stops answering for a while: commands wait and settle, none is dead-lettered."""

from __future__ import annotations

import asyncio

import pytest

from infra.settings import Settings
from schemas.topics import DEPOSIT_COMMANDS, dead_letter_topic
from tests.support.api import ApiUser
from tests.support.kafka import read_topic
from tests.support.processes import frozen, pid_listening_with

pytestmark = pytest.mark.integration


async def test_dynamodb_unavailable_for_a_while(user: ApiUser, settings: Settings) -> None:
    port = str(settings.dynamodb_endpoint_url).rsplit(":", 1)[1]
    pid = pid_listening_with("DynamoDBLocal.jar", f"-port {port}")
    # Longer than the client's read timeout, so the consumer sees real failures and retries them.
    with frozen(pid, seconds=12):
        # The intake needs only Kafka and Redis: commands are still accepted.
        ids = [await user.deposit("2.50") for _ in range(5)]
    statuses = await asyncio.gather(*(user.wait_for(i, timeout_s=90) for i in ids))
    assert {s["status"] for s in statuses} == {"settled"}
    assert await user.balance() == "12.50"
    assert (
        await read_topic(
            settings.kafka_bootstrap_servers, dead_letter_topic(DEPOSIT_COMMANDS), user.account_id
        )
        == []
    )


async def test_kafka_unavailable_for_a_while(user: ApiUser, settings: Settings) -> None:
    first = await user.deposit("1.00")
    port = settings.kafka_bootstrap_servers.rsplit(":", 1)[1]
    pid = pid_listening_with("tansu", f"127.0.0.1:{port}")
    await asyncio.to_thread(_freeze_blocking, pid, 6)
    second = await user.deposit("2.00")
    statuses = await asyncio.gather(user.wait_for(first, timeout_s=90), user.wait_for(second, timeout_s=90))
    assert {s["status"] for s in statuses} == {"settled"}
    assert await user.balance() == "3.00"


def _freeze_blocking(pid: int, seconds: float) -> None:
    with frozen(pid, seconds):
        pass
