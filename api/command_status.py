"""A command's status as clients and admins see it: the intake's accepted record until the settlement's
outcome record exists, then that. The poll, the long poll, the stream and the admin's lookup all get it
here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError

from api.live.hub import LiveHub, LiveRecord
from api.resources import Resources
from infra.dynamo.command_statuses import status_of
from schemas.commands import COMMAND_TYPES
from schemas.envelope import RawEnvelope
from schemas.http import CommandStatus

log = structlog.get_logger(__name__)


async def find_command(
    resources: Resources, command_id: uuid.UUID, account_id: str | None
) -> tuple[str, CommandStatus] | None:
    """The command's account and status; None if unknown. `account_id` confines the lookup to that
    account's commands (a user's own); None looks in every account (an admin's lookup)."""
    cached = await resources.redis.get(f"command:{command_id}")
    accepted: dict[str, Any] | None = json.loads(cached) if cached is not None else None
    if account_id is not None and accepted is not None and accepted.get("account_id") != account_id:
        accepted = None
    owner = account_id or (str(accepted["account_id"]) if accepted is not None else None)
    if owner is None:
        owner = await resources.statuses.owner(command_id)
    if owner is None:
        return None
    accepted_at = datetime.fromisoformat(accepted["accepted_at"]) if accepted is not None else None
    settled = await resources.statuses.settled(owner, command_id, accepted_at)
    if settled is not None:
        if settled.accepted_at is None and accepted is not None:
            # Settled before outcome records kept the acceptance time.
            settled = settled.model_copy(update={"accepted_at": accepted["accepted_at"]})
        return owner, settled
    if accepted is None:
        return None
    return owner, CommandStatus(
        command_id=command_id, kind=accepted["kind"], status="accepted", accepted_at=accepted["accepted_at"]
    )


async def await_command(
    resources: Resources, hub: LiveHub, command_id: uuid.UUID, account_id: str, wait_s: float
) -> tuple[str, CommandStatus] | None:
    """The long poll: the status as soon as it is terminal, else after `wait_s` seconds. The waiter
    sleeps on the hub until the command's outcome record arrives (no read while it waits), then reads
    once; it is registered before the first read, so an outcome arriving in between still wakes it."""
    with hub.watch(command_id) as outcome_arrived:
        found = await find_command(resources, command_id, account_id)
        if found is None or found[1].status != "accepted" or wait_s <= 0:
            return found
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outcome_arrived.wait(), wait_s)
    return await find_command(resources, command_id, account_id)


async def live_status(resources: Resources, hub: LiveHub, record: LiveRecord) -> CommandStatus | None:
    """The status a stream sends for a command or outcome record of the hub, exactly as the poll would
    answer it at that step; None when there is nothing to send (the command has moved on already, or the
    record is not one this API can read)."""
    command_id = record.command_id
    if command_id is None:
        return None
    try:
        if record.kind == "accepted":
            if hub.has_outcome(command_id):
                return None
            return _accepted_status(command_id, record)
        accepted = hub.accepted_record(command_id)
        if accepted is not None:
            # The outcome record's acceptance time is its command's envelope time: no read needed.
            accepted_at = RawEnvelope.model_validate_json(accepted.value).occurred_at
            return status_of(command_id, {"events": [record.value.decode()], "accepted_at": accepted_at})
    except (ValidationError, KeyError, UnicodeDecodeError) as exc:
        log.warning("live.unreadable_record", topic=record.topic, offset=record.offset, error=str(exc))
        return None
    # Its command was accepted before the window: read it like a poll does.
    found = await find_command(resources, command_id, record.account_id)
    return found[1] if found is not None else None


def _accepted_status(command_id: uuid.UUID, record: LiveRecord) -> CommandStatus:
    envelope = RawEnvelope.model_validate_json(record.value)
    kind = COMMAND_TYPES[envelope.type].KIND
    return CommandStatus(
        command_id=command_id, kind=kind, status="accepted", accepted_at=envelope.occurred_at
    )
