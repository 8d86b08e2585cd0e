"""Logs carry command_id and account_id from intake to consumer, and one trace id joins them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.conftest import RunningSystem
from tests.support.api import ApiUser

pytestmark = pytest.mark.integration


def _records(system: RunningSystem) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for line in system.logs().splitlines():
        name, _, raw = line.partition("| ")
        if raw.startswith("{"):
            records.append((name.strip(), json.loads(raw)))
    return records


async def test_one_trace_and_the_same_ids_from_intake_to_ledger(user: ApiUser, system: RunningSystem) -> None:
    command_id = (await user.settle("/v1/deposits", "7.00"))["command_id"]
    deadline = time.monotonic() + 10
    while True:
        mine = [(name, r) for name, r in _records(system) if r.get("command_id") == command_id]
        by_process = {name for name, _ in mine}
        if {"api", "ledger"} <= by_process or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {"api", "ledger"} <= by_process, by_process
    assert all(r.get("account_id") == user.account_id for _, r in mine)
    accepted = next(r for name, r in mine if name == "api" and r["event"] == "command.accepted")
    completed = next(r for name, r in mine if name == "ledger" and r["event"] == "command.completed")
    assert accepted["trace_id"] and accepted["trace_id"] == completed["trace_id"]
