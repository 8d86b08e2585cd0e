"""`Idempotency-Key`: a retried POST returns the same receipt and publishes nothing new."""

from __future__ import annotations

import uuid

import pytest

from infra.settings import Settings
from schemas.topics import DEPOSIT_COMMANDS
from tests.support.api import ApiUser
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def test_a_retried_deposit_is_credited_once(user: ApiUser, settings: Settings) -> None:
    key = f"retry-{uuid.uuid4()}"
    first = await user.post("/v1/deposits", {"amount": "40.00"}, **{"Idempotency-Key": key})
    second = await user.post("/v1/deposits", {"amount": "40.00"}, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    await user.wait_for(first.json()["command_id"])
    assert await user.balance() == "40.00"
    published = await read_topic(settings.kafka_bootstrap_servers, DEPOSIT_COMMANDS, user.account_id)
    assert len(published) == 1


async def test_the_same_key_with_another_body_is_422(user: ApiUser) -> None:
    key = f"retry-{uuid.uuid4()}"
    assert (
        await user.post("/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": key})
    ).status_code == 202
    other = await user.post("/v1/deposits", {"amount": "2.00"}, **{"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    elsewhere = await user.post("/v1/withdrawals", {"amount": "1.00"}, **{"Idempotency-Key": key})
    assert elsewhere.status_code == 422


async def test_keys_are_per_user_and_validated(user: ApiUser, http: object) -> None:
    from tests.support.api import register

    key = f"shared-{uuid.uuid4()}"
    other = await register(user.client)
    mine = await user.post("/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": key})
    theirs = await other.post("/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": key})
    assert mine.json()["command_id"] != theirs.json()["command_id"]
    too_long = await user.post("/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 422
    same = await user.post("/v1/deposits", {"amount": "1.00"}, **{"Idempotency-Key": key})
    assert same.json() == mine.json()
